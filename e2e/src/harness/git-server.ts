import { execFile, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';

export interface GitServerOptions {
  /** Require HTTP basic auth with these credentials (any username, password = token works too). */
  auth?: { username: string; password: string };
}

/**
 * Real git repositories served over smart HTTP by `git http-backend` (CGI), from a temp
 * dir. Pushes are allowed for authenticated requests, and for all when no auth is set.
 */
export interface GitServer {
  /** Base URL; a repository named `r` is at `${url}/r.git`. */
  url: string;
  root: string;
  /** Creates a bare repository with an initial commit of `files` on `branch`. */
  createRepo(name: string, files: Record<string, string>, options?: { branch?: string }): Promise<string>;
  /** A working clone (real git CLI) to commit and push from. */
  clone(name: string, dir?: string): Promise<GitWorkdir>;
  /** Requests served, for tests about fetch behaviour. */
  requests: number;
  stop(): Promise<void>;
}

export interface GitWorkdir {
  dir: string;
  git(...args: string[]): Promise<string>;
  /** Writes files (null deletes), commits them and pushes the current branch; returns the new commit. */
  commit(files: Record<string, string | null>, message: string): Promise<string>;
  head(): Promise<string>;
}

const GIT_ENV = {
  GIT_AUTHOR_NAME: 'Flotilla Test',
  GIT_AUTHOR_EMAIL: 'test@flotilla.invalid',
  GIT_COMMITTER_NAME: 'Flotilla Test',
  GIT_COMMITTER_EMAIL: 'test@flotilla.invalid',
  GIT_TERMINAL_PROMPT: '0',
};

const execFileAsync = promisify(execFile);

/** Async on purpose: the HTTP server answering this git runs in the same event loop. */
async function runGit(cwd: string, args: string[]): Promise<string> {
  const { stdout } = await execFileAsync('git', args, {
    cwd,
    env: { ...process.env, ...GIT_ENV },
    maxBuffer: 64 * 1024 * 1024,
  });
  return stdout.trim();
}

export function writeFiles(dir: string, files: Record<string, string | null>): void {
  for (const [path, content] of Object.entries(files)) {
    const full = join(dir, path);
    if (content === null) rmSync(full, { force: true, recursive: true });
    else {
      mkdirSync(dirname(full), { recursive: true });
      writeFileSync(full, content);
    }
  }
}

function workdir(dir: string): GitWorkdir {
  const w: GitWorkdir = {
    dir,
    git: (...args) => runGit(dir, args),
    async commit(files, message) {
      writeFiles(dir, files);
      await w.git('add', '-A');
      await w.git('commit', '-q', '--allow-empty', '-m', message);
      await w.git('push', '-q', 'origin', 'HEAD');
      return w.head();
    },
    head: () => w.git('rev-parse', 'HEAD'),
  };
  return w;
}

export async function startGitServer(options: GitServerOptions = {}): Promise<GitServer> {
  const base = mkdtempSync(join(tmpdir(), 'flotilla-git-'));
  const root = join(base, 'repos');
  mkdirSync(root);
  let server: Server;
  const state = { requests: 0 };

  const handle = (req: IncomingMessage, res: ServerResponse) => {
    state.requests++;
    const url = new URL(req.url ?? '/', 'http://x');
    let remoteUser = options.auth ? '' : 'anonymous';
    if (options.auth) {
      const header = req.headers.authorization ?? '';
      const [scheme, value] = header.split(' ');
      if (scheme?.toLowerCase() === 'basic' && value) {
        const [u, ...p] = Buffer.from(value, 'base64').toString().split(':');
        if (u === options.auth.username && p.join(':') === options.auth.password) remoteUser = u;
      }
      if (!remoteUser) {
        res.writeHead(401, { 'WWW-Authenticate': 'Basic realm="flotilla-test"' }).end();
        req.resume();
        return;
      }
    }
    const cgi = spawn('git', ['http-backend'], {
      env: {
        ...process.env,
        GIT_PROJECT_ROOT: root,
        GIT_HTTP_EXPORT_ALL: '1',
        PATH_INFO: decodeURIComponent(url.pathname),
        QUERY_STRING: url.search.slice(1),
        REQUEST_METHOD: req.method ?? 'GET',
        CONTENT_TYPE: req.headers['content-type'] ?? '',
        HTTP_CONTENT_ENCODING: String(req.headers['content-encoding'] ?? ''),
        GIT_PROTOCOL: String(req.headers['git-protocol'] ?? ''),
        REMOTE_USER: remoteUser,
        REMOTE_ADDR: '127.0.0.1',
      },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    req.pipe(cgi.stdin);
    let head = Buffer.alloc(0);
    let headersDone = false;
    cgi.stdout.on('data', (chunk: Buffer) => {
      if (headersDone) {
        res.write(chunk);
        return;
      }
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) return;
      headersDone = true;
      let status = 200;
      for (const line of head.subarray(0, end).toString().split('\r\n')) {
        const i = line.indexOf(':');
        const name = line.slice(0, i).trim();
        const value = line.slice(i + 1).trim();
        if (name.toLowerCase() === 'status') status = Number.parseInt(value, 10);
        else res.setHeader(name, value);
      }
      res.writeHead(status);
      res.write(head.subarray(end + 4));
    });
    cgi.stdout.on('end', () => res.end());
    cgi.on('error', () => res.writeHead(500).end());
  };

  server = createServer(handle);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const addr = server.address();
  const port = addr && typeof addr === 'object' ? addr.port : 0;
  const authPart = options.auth
    ? `${encodeURIComponent(options.auth.username)}:${encodeURIComponent(options.auth.password)}@`
    : '';
  const url = `http://127.0.0.1:${port}`;
  const authedUrl = `http://${authPart}127.0.0.1:${port}`;

  const git: GitServer = {
    url,
    root,
    get requests() {
      return state.requests;
    },
    async createRepo(name, files, opts = {}) {
      const branch = opts.branch ?? 'main';
      const bare = join(root, `${name}.git`);
      await runGit(root, ['init', '-q', '--bare', '-b', branch, bare]);
      await runGit(bare, ['config', 'http.receivepack', 'true']);
      const seed = mkdtempSync(join(base, 'seed-'));
      await runGit(seed, ['init', '-q', '-b', branch]);
      writeFiles(seed, files);
      await runGit(seed, ['add', '-A']);
      await runGit(seed, ['commit', '-q', '--allow-empty', '-m', 'initial']);
      await runGit(seed, ['push', '-q', bare, `${branch}:${branch}`]);
      rmSync(seed, { recursive: true, force: true });
      return `${url}/${name}.git`;
    },
    async clone(name, dir) {
      const target = dir ?? mkdtempSync(join(base, `work-${name}-`));
      await runGit(base, ['clone', '-q', `${authedUrl}/${name}.git`, target]);
      return workdir(target);
    },
    async stop() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      rmSync(base, { recursive: true, force: true });
    },
  } as GitServer;
  return git;
}
