/**
 * A real Prometheus (Debian's `prometheus`) inside a test namespace, scraping the exporter there
 * every second and evaluating our rule files, with its storage in a temporary directory.
 */

import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  DASHBOARD_FILE,
  dashboardQueries,
  type PanelQuery,
  RULES_FILE,
  type RuleExpression,
  ruleExpressions,
} from '../../dashboards/queries.js';
import { LISTEN as EXPORTER } from './exporter.js';
import { type Netns, waitFor } from './netns.js';

export const PROMETHEUS = '127.0.0.1:9090';
/** A second Prometheus beside the first (netns.ts leaves its port untracked too). */
export const SECOND_PROMETHEUS = '127.0.0.1:9091';
export const JOB = 'conntrack';

/** Grafana's variables as a dashboard user would have them for the one exporter a test runs. */
export const GRAFANA_VARS: Readonly<Record<string, string>> = {
  // 4 x the 1 s scrape interval, as Grafana computes $__rate_interval
  __rate_interval: '4s',
  __interval: '1s',
  __range: '1m',
  job: JOB,
  instance: EXPORTER,
  datasource: 'prometheus',
};

/** Every query of a shipped dashboard, as Grafana would send it for the test's exporter. */
export function shippedDashboardQueries(file = DASHBOARD_FILE): PanelQuery[] {
  return dashboardQueries(JSON.parse(readFileSync(file, 'utf8')), GRAFANA_VARS);
}

/** The recording rules or the alerts of the shipped rule file. */
export function shippedRules(kind: RuleExpression['kind']): RuleExpression[] {
  return ruleExpressions(readFileSync(RULES_FILE, 'utf8')).filter((r) => r.kind === kind);
}

export interface Series {
  metric: Record<string, string>;
  /** Instant vectors and scalars. */
  value?: [number, string];
  /** Range vectors. */
  values?: [number, string][];
}

export class PrometheusProcess {
  private log = '';
  private constructor(
    private readonly ns: Netns,
    private readonly child: ChildProcess,
    private readonly dir: string,
    private readonly listen: string,
  ) {
    child.stderr!.on('data', (d: Buffer) => {
      this.log += d.toString();
    });
  }

  /** `job` adds lines to the scrape job (scheme, tls_config, basic_auth), indented as they go. */
  /**
   * `options.flags` are added to Prometheus' command line (`--enable-feature=native-histograms`);
   * `options.listen` runs a second one beside the first (SECOND_PROMETHEUS).
   */
  static async start(
    ns: Netns,
    ruleFiles: string[],
    job: string[] = [],
    options: { flags?: string[]; listen?: string } = {},
  ): Promise<PrometheusProcess> {
    const listen = options.listen ?? PROMETHEUS;
    const dir = mkdtempSync(join(tmpdir(), 'ctx-prom-'));
    const config = [
      'global:',
      '  scrape_interval: 1s',
      '  evaluation_interval: 1s',
      'rule_files:',
      ...ruleFiles.map((f) => `  - ${JSON.stringify(f)}`),
      'scrape_configs:',
      `  - job_name: ${JOB}`,
      ...job.map((line) => `    ${line}`),
      '    static_configs:',
      `      - targets: [${JSON.stringify(EXPORTER)}]`,
    ].join('\n');
    writeFileSync(join(dir, 'prometheus.yml'), `${config}\n`);
    const child = ns.spawn('prometheus', [
      `--config.file=${join(dir, 'prometheus.yml')}`,
      `--storage.tsdb.path=${join(dir, 'data')}`,
      `--web.listen-address=${listen}`,
      '--log.level=warn',
      ...(options.flags ?? []),
    ]);
    const p = new PrometheusProcess(ns, child, dir, listen);
    await waitFor(
      'Prometheus to become ready',
      () => {
        if (child.exitCode !== null) throw new Error(`prometheus exited ${child.exitCode}: ${p.log}`);
        return p.get('/-/ready').status === 200 ? true : undefined;
      },
      30_000,
    );
    return p;
  }

  get(path: string): { status: number; body: string } {
    return this.ns.httpGet(`http://${this.listen}${path}`);
  }

  /** An instant query; throws with Prometheus' own error text if the query is rejected. */
  query(expr: string): Series[] {
    const res = this.get(`/api/v1/query?query=${encodeURIComponent(expr)}`);
    const body = JSON.parse(res.body) as {
      status: string;
      error?: string;
      data?: { resultType: string; result: unknown };
    };
    if (body.status !== 'success') throw new Error(`query ${expr} failed: ${body.error}`);
    const data = body.data!;
    if (data.resultType === 'scalar') {
      return [{ metric: {}, value: data.result as [number, string] }];
    }
    return data.result as Series[];
  }

  /** The single value of a query that must return exactly one series. */
  value(expr: string): number {
    const r = this.query(expr);
    if (r.length !== 1) throw new Error(`${expr}: ${r.length} series, want 1`);
    return Number(r[0]!.value?.[1]);
  }

  async stop(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      const exited = new Promise((r) => this.child.once('exit', r));
      this.child.kill('SIGTERM');
      await exited;
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}
