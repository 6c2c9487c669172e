/**
 * `flotilla completion bash|zsh`: a shell completion script for every command and flag.
 *
 * The commands and their flags are read from the usage text, the one place that lists them
 * all for users: a command or flag added to `flotilla --help` completes without a second list
 * to keep in step. zsh runs the same function through its bash compatibility layer.
 */

/** A command as completion knows it: its words (`cluster add`), its flags, and the values of its argument if they are a fixed choice (`bash|zsh`). */
export interface CompletionCommand {
  words: string[];
  flags: string[];
  choices: string[];
}

/** The shells `flotilla completion` writes a script for. */
export const COMPLETION_SHELLS = ['bash', 'zsh'] as const;
export type CompletionShell = (typeof COMPLETION_SHELLS)[number];

const FLAG = /(?<![\w-])(--[a-z][a-z0-9-]*|-[a-z])\b/g;

/**
 * The commands of a usage text: each line `  flotilla WORD [WORD] …` starts one (the second
 * word only after one of `groups`, e.g. `cluster add`), its indented continuation lines add flags.
 */
export function commandsFromUsage(usage: string, groups: ReadonlySet<string>): CompletionCommand[] {
  const commands = new Map<string, CompletionCommand>();
  let current: CompletionCommand | undefined;
  for (const line of usage.split('\n')) {
    const m = /^ {2}flotilla ([a-z][a-z-]*)(?: ([a-z][a-z-]*)(?![|\w-]))?(.*)$/.exec(line);
    if (m) {
      const words = groups.has(m[1]!) && m[2] ? [m[1]!, m[2]] : [m[1]!];
      const rest = groups.has(m[1]!) || !m[2] ? m[3]! : ` ${m[2]}${m[3]}`;
      const key = words.join(' ');
      current = commands.get(key) ?? { words, flags: [], choices: [] };
      commands.set(key, current);
      for (const f of rest.matchAll(FLAG)) current.flags.push(f[1]!);
      const choice = /^ ([a-z][a-z-]*(?:\|[a-z][a-z-]*)+)(?:\s|$)/.exec(rest);
      if (choice) current.choices.push(...choice[1]!.split('|'));
    } else if (current && /^ {4,}\S/.test(line)) {
      for (const f of line.matchAll(FLAG)) current.flags.push(f[1]!);
    } else {
      current = undefined;
    }
  }
  for (const c of commands.values()) c.flags = [...new Set(c.flags)].sort();
  return [...commands.values()];
}

/** The completion script for `shell`, from the usage text, its command groups and the flags every command takes. */
export function completionScript(
  shell: CompletionShell,
  usage: string,
  groups: ReadonlySet<string>,
  global: string[],
): string {
  const commands = commandsFromUsage(usage, groups);
  for (const c of commands) c.flags = c.flags.filter((f) => !global.includes(f));
  const subcommands = new Map<string, string[]>();
  for (const c of commands) {
    const subs = subcommands.get(c.words[0]!) ?? [];
    if (c.words[1]) subs.push(c.words[1]);
    subcommands.set(c.words[0]!, subs);
  }
  const q = (words: Iterable<string>) => [...new Set(words)].join(' ');
  const subCases = [...subcommands]
    .filter(([, subs]) => subs.length > 0)
    .map(([g, subs]) => `    ${g}) subs="${q(subs)}" ;;`)
    .join('\n');
  const flagCases = commands
    .map((c) => `    "${c.words.join(' ')}") flags="${q(c.flags)}" choices="${q(c.choices)}" ;;`)
    .join('\n');
  const body = `_flotilla() {
  local cur prev group subs="" cmd flags="" choices=""
  cur="\${COMP_WORDS[COMP_CWORD]}"
  prev="\${COMP_WORDS[COMP_CWORD-1]}"
  group="\${COMP_WORDS[1]}"
  if [ "$COMP_CWORD" -eq 1 ]; then
    COMPREPLY=($(compgen -W "${q(subcommands.keys())} ${q(global)}" -- "$cur"))
    return
  fi
  case "$group" in
${subCases}
  esac
  if [ -n "$subs" ] && [ "$COMP_CWORD" -eq 2 ]; then
    COMPREPLY=($(compgen -W "$subs" -- "$cur"))
    return
  fi
  if [ -n "$subs" ]; then cmd="$group \${COMP_WORDS[2]}"; else cmd="$group"; fi
  if [ "$prev" = "-o" ] || [ "$prev" = "--output" ]; then
    COMPREPLY=($(compgen -W "json" -- "$cur"))
    [ "$cmd" = "bundle export" ] && COMPREPLY=($(compgen -f -- "$cur"))
    return
  fi
  case "$cmd" in
${flagCases}
  esac
  case "$cur" in
    -*) COMPREPLY=($(compgen -W "$flags ${q(global)}" -- "$cur")) ;;
    *) [ -n "$choices" ] && COMPREPLY=($(compgen -W "$choices" -- "$cur")) ;;
  esac
}`;
  if (shell === 'bash')
    return `# flotilla completion for bash. Load it with:  source <(flotilla completion bash)
${body}
complete -o default -F _flotilla flotilla
`;
  return `#compdef flotilla
# flotilla completion for zsh. Load it with:  source <(flotilla completion zsh)
# (e.g. in ~/.zshrc). It is the bash completion, run through zsh's bashcompinit.
(( $+functions[compdef] )) || { autoload -U +X compinit && compinit }
autoload -U +X bashcompinit && bashcompinit
${body}
complete -o default -F _flotilla flotilla
`;
}
