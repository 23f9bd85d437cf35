/**
 * The environment variables Rowfleet's own code reads, each name spelled once. The CDK stack (lib/) and the local
 * runtime (local/) set them; core/, the handlers and the worker read them through these names, so a rename cannot
 * leave a function reading a variable its stack no longer sets (test/unit/config/env.test.ts finds a name written
 * anywhere else). Variables other tools define (AWS_*, POWERTOOLS_*, NODE_*) keep their own names where used.
 */
export const ENV = {
  // Every function and the worker task: the stage and the resources they address (core/shared/env.ts).
  stage: 'STAGE',
  bucket: 'BUCKET_NAME',
  table: 'TABLE_NAME',
  finalizeQueueUrl: 'FINALIZE_QUEUE_URL',
  /** The upload-events queue, where a worker that left and a finalize that ended a job ask for a grant pass. */
  grantRequestsQueueUrl: 'GRANT_REQUESTS_QUEUE_URL',
  dlqArn: 'DLQ_ARN',
  jobsTopicArn: 'JOBS_TOPIC_ARN',

  // The functions that launch and stop workers (core/aws/ecs-launcher.ts).
  cluster: 'CLUSTER_ARN',
  taskDefinition: 'TASK_DEFINITION_ARN',
  workerContainer: 'WORKER_CONTAINER_NAME',
  workerSubnets: 'WORKER_SUBNET_IDS',
  workerSecurityGroups: 'WORKER_SECURITY_GROUP_IDS',
  workerAssignPublicIp: 'WORKER_ASSIGN_PUBLIC_IP',

  // A worker task: the job it serves (RunTask's container overrides, core/aws/task-launcher.ts).
  site: 'SITE',
  jobToken: 'JOB_TOKEN',

  // The console function.
  consoleUploadOrigin: 'UPLOAD_ORIGIN',
  consoleDir: 'CONSOLE_DIR',

  // Spans (core/aws/tracing.ts): `otlp`, `file` or `off`; the OTLP endpoint's override; the local span store.
  tracing: 'ROWFLEET_TRACING',
  tracingEndpoint: 'ROWFLEET_TRACING_ENDPOINT',
  traceDir: 'ROWFLEET_TRACE_DIR',

  // Users' row processors (core/processors/users.ts): their sources, their built bundles, the inspect timeout.
  processorsDir: 'ROWFLEET_PROCESSORS_DIR',
  processorsBuilt: 'ROWFLEET_PROCESSORS_BUILT',
  inspectTimeoutMs: 'ROWFLEET_INSPECT_TIMEOUT_MS',

  // The worker budget's local knobs (core/deps.ts).
  maxWorkers: 'ROWFLEET_MAX_WORKERS',
  defaultWorkersPerJob: 'ROWFLEET_DEFAULT_WORKERS_PER_JOB',

  // The local runtime's own processes.
  functionName: 'ROWFLEET_FUNCTION',
  runtimeInstance: 'ROWFLEET_RUNTIME_INSTANCE',
  stateDir: 'ROWFLEET_STATE_DIR',
  emulatorOptions: 'ROWFLEET_EMULATOR_OPTIONS',
  uploadEventsUrl: 'UPLOAD_EVENTS_URL',
} as const;
