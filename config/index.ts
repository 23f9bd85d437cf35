import { configSchema, type RowfleetConfig, type SiteConfig, type StageConfig } from './schema.ts';
import { sites } from './sites.ts';

export type {
  RowfleetConfig,
  SiteConfig,
  StageConfig,
  Limits,
  Timings,
  InfraConfig,
  MailConfig,
  BulkMailConfig,
  BulkMailTemplate,
} from './schema.ts';
export { derivedTimings } from './schema.ts';

/** Raw configuration: stages and sites. Validated once by {@link loadConfig}. */
export const rawConfig = {
  stages: [
    // The local override of the timings: workers poll for 1 s and a dead worker's chunk is back in 15 s, so
    // local jobs (and the tests) react in seconds; the reaper runs every 10 s and relaunches after 30 s; a
    // failed finalize is delivered again after 90 s (its lease is taken over after 150 s); a refused worker launch
    // is retried after 2 s, then 4, 8, … up to 20 s.
    {
      name: 'local',
      timings: {
        chunkVisibilitySeconds: 15,
        workerWaitSeconds: 1,
        stallGraceSeconds: 30,
        reaperIntervalSeconds: 10,
        uploadTimeoutSeconds: 270,
        finalizeTimeoutSeconds: 60,
        queueMarginSeconds: 30,
        launchRetryBaseSeconds: 2,
        launchRetryMaxSeconds: 20,
      },
      // The embedded SES takes what it gets; 200 mails/s is the rate the `mail` benchmark holds it to.
      mail: { ratePerSecond: 200 },
    },
    { name: 'dev', limits: { maxWorkersPerJob: 2 } },
    { name: 'stg', limits: { maxWorkersPerJob: 4 } },
    {
      name: 'prod',
      limits: { maxWorkersPerJob: 10, retentionDays: 30 },
      infra: { retainData: true, logRetentionDays: 90, dataEncryption: 'KMS' },
    },
  ],
  sites,
};

let cached: RowfleetConfig | undefined;

/** The validated configuration; throws with every problem listed when it is invalid. */
export function loadConfig(raw: unknown = rawConfig): RowfleetConfig {
  if (raw === rawConfig && cached) return cached;
  const result = configSchema.safeParse(raw);
  if (!result.success) {
    const lines = result.error.issues.map((i) => `  ${i.path.join('.') || '(root)'}: ${i.message}`);
    throw new Error(`Invalid Rowfleet configuration:\n${lines.join('\n')}`);
  }
  if (raw === rawConfig) cached = result.data;
  return result.data;
}

export function getStage(name: string, config: RowfleetConfig = loadConfig()): StageConfig {
  const stage = config.stages.find((s) => s.name === name);
  if (!stage) {
    throw new Error(
      `Unknown stage "${name}". Configured stages: ${config.stages.map((s) => s.name).join(', ')}`,
    );
  }
  return stage;
}

export function getSite(id: string, config: RowfleetConfig = loadConfig()): SiteConfig {
  const site = config.sites.find((s) => s.id === id);
  if (!site) {
    throw new Error(`Unknown site "${id}". Configured sites: ${config.sites.map((s) => s.id).join(', ')}`);
  }
  return site;
}
