// `node:http` for the bundles that ship (the functions, the worker image, the local worker), aliased to this file
// at bundle time (config/node.ts NODE_HTTP_ALIAS): on Node 24 importing `node:http` as an ES module builds its
// export facade, which reads the lazy WebSocket getters and loads undici (35–64 ms at every cold start, measured);
// the module itself, without the facade, takes 3 ms.
module.exports = process.getBuiltinModule('node:http');
