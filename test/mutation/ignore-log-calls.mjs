import { declareValuePlugin, PluginKind } from '@stryker-mutator/api/plugin';

/**
 * A Stryker ignorer (stryker.config.json `ignorers`): the arguments of log calls (`log.info(…)`,
 * `logger.error(…)`) and metric calls (`publishMetrics(…)`, `publishSiteMetrics(…)`) are not mutated. A log
 * line's text and fields, and a metric's figures, guard nothing; which site a log line names is decided by the
 * logger it is called on (jobLogger, mailLogger), and that is mutated and tested.
 */
const LEVELS = new Set(['debug', 'info', 'warn', 'error']);
const METRICS = new Set(['publishMetrics', 'publishSiteMetrics']);

function isLogCall(callee) {
  return (
    callee.type === 'MemberExpression' &&
    callee.object.type === 'Identifier' &&
    /^(log|logger)$/.test(callee.object.name) &&
    callee.property.type === 'Identifier' &&
    LEVELS.has(callee.property.name)
  );
}

export const strykerPlugins = [
  declareValuePlugin(PluginKind.Ignore, 'log-calls', {
    shouldIgnore(path) {
      const node = path.node;
      if (node.type !== 'CallExpression') return undefined;
      if (isLogCall(node.callee)) return 'a log line guards nothing';
      if (node.callee.type === 'Identifier' && METRICS.has(node.callee.name))
        return 'a metric guards nothing';
      return undefined;
    },
  }),
];
