import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { parse } from 'yaml'
import { createMetricsApp } from '../functions/metrics/app.ts'
import { silentLogger } from '../lib/logger.ts'
import { type ComposeService, environmentOf, loadCompose, REPO_ROOT, readRepoFile } from './docker-support.ts'

const compose = loadCompose()
const MONITORING = ['prometheus', 'grafana']
const DASHBOARD = 'infra/monitoring/grafana/dashboards/chat-system.json'

const bindMounts = (svc: ComposeService) =>
  (svc.volumes ?? [])
    .map((volume) => (typeof volume === 'string' ? volume.split(':') : [volume.source ?? '', volume.target]))
    .filter(([source]) => source!.startsWith('./'))
    .map(([source, target]) => ({ source: source!, target: target! }))

/** The metric names a Prometheus scraping this process would store, read from a real GET /metrics. */
const scrapedNames = async () => {
  const res = await createMetricsApp({ logger: silentLogger, config: { METRICS_ENABLED: true } }).request(
    '/metrics',
  )
  const names = new Set<string>()
  for (const [, name, type] of (await res.text()).matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
    names.add(name!)
    if (type === 'histogram') for (const suffix of ['_bucket', '_sum', '_count']) names.add(name + suffix)
    if (type === 'summary') for (const suffix of ['_sum', '_count']) names.add(name + suffix)
  }
  return names
}

interface Panel {
  title: string
  datasource?: { uid: string }
  targets?: Array<{ expr: string }>
}

describe('the monitoring profile', () => {
  it('adds Prometheus and Grafana only under the monitoring profile, pinned, Grafana after a ready Prometheus', () => {
    for (const name of MONITORING) {
      expect(compose.services[name]?.profiles, name).toEqual(['monitoring'])
      expect(compose.services[name]?.image, name).toMatch(/:v?\d+\.\d+\.\d+$/)
    }
    expect(compose.services.prometheus!.depends_on).toMatchObject({ app: { condition: 'service_started' } })
    expect(compose.services.grafana!.depends_on).toMatchObject({
      prometheus: { condition: 'service_healthy' },
    })
  })

  it('mounts files and folders that exist: the scrape config, the provisioning and the dashboard', () => {
    const mounts = MONITORING.flatMap((name) => bindMounts(compose.services[name]!))

    expect(mounts.map((mount) => mount.target).sort()).toEqual([
      '/etc/grafana/dashboards',
      '/etc/grafana/provisioning',
      '/etc/prometheus/prometheus.yml',
    ])
    for (const { source } of mounts) expect(existsSync(join(REPO_ROOT, source)), source).toBe(true)
  })

  it('scrapes the app service on the port and path where it serves /metrics', () => {
    const config = parse(readRepoFile('infra/monitoring/prometheus.yml'))
    const [job] = config.scrape_configs

    expect(job.metrics_path).toBe('/metrics')
    expect(job.static_configs[0].targets).toEqual([`app:${environmentOf(compose.services.app!).PORT}`])
  })

  it('provisions the datasource the dashboard names, and loads dashboards from where they are mounted', () => {
    const datasources = parse(
      readRepoFile('infra/monitoring/grafana/provisioning/datasources/prometheus.yml'),
    )
    const providers = parse(readRepoFile('infra/monitoring/grafana/provisioning/dashboards/chat-system.yml'))
    const panels: Panel[] = JSON.parse(readRepoFile(DASHBOARD)).panels

    expect(datasources.datasources[0]).toMatchObject({ type: 'prometheus', url: 'http://prometheus:9090' })
    expect(new Set(panels.map((panel) => panel.datasource?.uid))).toEqual(
      new Set([datasources.datasources[0].uid]),
    )
    expect(providers.providers[0].options.path).toBe('/etc/grafana/dashboards')
  })

  it("queries only metrics that the server's GET /metrics exports", async () => {
    const exported = await scrapedNames()
    const panels: Panel[] = JSON.parse(readFileSync(join(REPO_ROOT, DASHBOARD), 'utf8')).panels
    const queried = panels.flatMap((panel) =>
      (panel.targets ?? []).map((target) => ({
        panel: panel.title,
        // Metric names are the identifiers of our own families and of the default Node metrics.
        names: [...target.expr.matchAll(/\b(?:chat|nodejs|process)_[a-z0-9_]+/g)].map(([name]) => name),
      })),
    )

    for (const { panel, names } of queried) {
      expect(names.length, panel).toBeGreaterThan(0)
      for (const name of names) expect(exported.has(name), `${panel}: ${name}`).toBe(true)
    }
    const covered = new Set(queried.flatMap((query) => query.names))
    for (const name of [
      'chat_http_requests_total',
      'chat_http_request_duration_seconds_bucket',
      'chat_job_persist_lag_seconds_bucket',
      'chat_queue_messages',
      'chat_search_index_pending',
      'nodejs_eventloop_lag_seconds',
    ])
      expect(covered, name).toContain(name)
  })
})
