import { App, Validations, type AppProps } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { loadConfig, type RowfleetConfig, type StageConfig } from '../config/index.ts';
import { RowfleetStack, stackName } from './rowfleet-stack.ts';

/** Stages that can be deployed to AWS (the `local` stage runs on the embedded local runtime only). */
export function deployableStages(config: RowfleetConfig = loadConfig()): StageConfig[] {
  return config.stages.filter((s) => s.name !== 'local');
}

/** The stage named by `-c stage=<name>`; throws with the list of stages when it is missing or unknown. */
export function resolveStage(name: unknown, config: RowfleetConfig = loadConfig()): StageConfig {
  const stages = deployableStages(config);
  const list = stages.map((s) => s.name).join(', ');
  if (typeof name !== 'string' || name === '') {
    throw new Error(`No stage given. Pick one with -c stage=<name>; deployable stages: ${list}.`);
  }
  const stage = stages.find((s) => s.name === name);
  if (!stage) {
    const hint =
      name === 'local' ? ' The local stage runs on the embedded runtime (rowfleet run), not on AWS.' : '';
    throw new Error(`Unknown stage "${name}".${hint} Deployable stages: ${list}.`);
  }
  return stage;
}

export interface RowfleetAppOptions {
  /** Stage name; @default the `stage` context value (-c stage=<name>) */
  readonly stage?: string;
  /** Passed to the App (context, outdir); the CDK CLI supplies them otherwise. */
  readonly appProps?: AppProps;
  /** Environment for account/region. @default process.env */
  readonly env?: NodeJS.ProcessEnv;
  /** Changes to the stage's infra settings (tests synthesize the options no stage of config/ sets yet). */
  readonly infra?: Partial<StageConfig['infra']>;
}

/**
 * Where the stage deploys. Region: the stage's (config/, default ap-northeast-1), so a developer's default
 * profile region never moves a stage. Account: the stage's when pinned in config/, else the credentials'
 * (CDK_DEFAULT_ACCOUNT); a pinned account that differs from the credentials' is refused.
 */
export function stageEnvironment(
  stage: StageConfig,
  env: NodeJS.ProcessEnv = process.env,
): { account?: string; region: string } {
  const current = env.CDK_DEFAULT_ACCOUNT;
  if (stage.account && current && stage.account !== current) {
    throw new Error(
      `Stage ${stage.name} deploys to account ${stage.account}, but the current credentials are for ${current}. Use the ${stage.name} profile.`,
    );
  }
  return { account: stage.account ?? current, region: stage.region ?? env.CDK_DEFAULT_REGION };
}

/** The CDK app: one stack for the chosen stage, with cdk-nag's AwsSolutions checks applied. */
export function createRowfleetApp(options: RowfleetAppOptions = {}): { app: App; stack: RowfleetStack } {
  const app = new App(options.appProps);
  const config = loadConfig();
  const resolved = resolveStage(options.stage ?? app.node.tryGetContext('stage'), config);
  const stage = options.infra ? { ...resolved, infra: { ...resolved.infra, ...options.infra } } : resolved;
  const stack = new RowfleetStack(app, stackName(stage.name), {
    stage,
    sites: config.sites,
    env: stageEnvironment(stage, options.env),
  });
  // cdk-nag v3 is a policy-validation plugin: any finding not acknowledged in lib/ stops the synth.
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app, { verbose: true }));
  return { app, stack };
}
