/** A few Prometheus counters and gauges, written by hand: the hub needs no more than this. */
export interface Metrics {
  inc(name: string, labels?: Record<string, string>, by?: number): void;
  /** A gauge read when scraped. */
  gauge(
    name: string,
    help: string,
    read: () => Promise<Array<{ labels?: Record<string, string>; value: number }>>,
  ): void;
  /** Prometheus text exposition format. */
  render(): Promise<string>;
}

const HELP: Record<string, string> = {
  flotilla_bundles_published_total: 'Bundles published (new generations).',
  flotilla_sync_passes_total: 'Reconcile passes run.',
  flotilla_render_errors_total: 'Cluster renders that failed.',
  flotilla_status_reports_total: 'Status reports received, by outcome.',
  flotilla_http_requests_total: 'Admin API requests, by status code.',
};

/** A label value as the text format writes it: backslash, quote and newline escaped. */
const escapeLabel = (v: string) =>
  /[\\"\n]/.test(v) ? v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n') : v;

/** The series key of a set of labels; cheap, as counters are bumped on hot paths (a status report each). */
function fmtLabels(labels?: Record<string, string>): string {
  if (!labels) return '';
  let out = '';
  for (const k in labels) out += `${out ? ',' : '{'}${k}="${escapeLabel(labels[k]!)}"`;
  return out && `${out}}`;
}

export function createMetrics(): Metrics {
  const counters = new Map<string, Map<string, number>>();
  const gauges: Array<{
    name: string;
    help: string;
    read: () => Promise<Array<{ labels?: Record<string, string>; value: number }>>;
  }> = [];
  return {
    inc(name, labels, by = 1) {
      const series = counters.get(name) ?? new Map<string, number>();
      counters.set(name, series);
      const key = fmtLabels(labels);
      series.set(key, (series.get(key) ?? 0) + by);
    },
    gauge(name, help, read) {
      gauges.push({ name, help, read });
    },
    async render() {
      const lines: string[] = [];
      for (const [name, series] of counters) {
        lines.push(`# HELP ${name} ${HELP[name] ?? name}`, `# TYPE ${name} counter`);
        for (const [labels, value] of series) lines.push(`${name}${labels} ${value}`);
      }
      for (const g of gauges) {
        lines.push(`# HELP ${g.name} ${g.help}`, `# TYPE ${g.name} gauge`);
        for (const s of await g.read()) lines.push(`${g.name}${fmtLabels(s.labels)} ${s.value}`);
      }
      return `${lines.join('\n')}\n`;
    },
  };
}
