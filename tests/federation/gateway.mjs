// Another team's subgraph joining ours, for real: starts a small "orders" subgraph, composes it
// with wechat-identity's subgraph (fetched live from the running server through `_service { sdl }`)
// in Apollo Gateway, and runs requests through the gateway as its clients would.
//
//   node gateway.mjs <identity base URL> <SDL key> <buyer user id>... < requests.json
//
// Order i (1-based) is `order-i`, total i * 100, bought by the i-th id. The gateway reads our SDL
// with the API key it holds (<SDL key>) and nothing else: each client request is sent on with the
// client's own `Authorization` (or none), so a client can do through the gateway exactly what it
// could do calling us. requests.json is a list of `{authorization, query, variables}`; prints the
// list of the gateway's answers (`{status, body}`) as one JSON line on stdout
// (tests/it/federation_gateway.rs asserts on it); exits non-zero if composition or the gateway
// fails.
import { ApolloServer } from '@apollo/server';
import { startStandaloneServer } from '@apollo/server/standalone';
import { ApolloGateway, IntrospectAndCompose, RemoteGraphQLDataSource } from '@apollo/gateway';
import { buildSubgraphSchema } from '@apollo/subgraph';
import { parse } from 'graphql';

const [identityUrl, sdlKey, ...buyers] = process.argv.slice(2);
if (!identityUrl || !sdlKey || buyers.length === 0) {
  console.error('usage: node gateway.mjs <identity base URL> <SDL key> <buyer user id>... < requests.json');
  process.exit(2);
}
setTimeout(() => {
  console.error('gateway test: no answer within 60 s');
  process.exit(3);
}, 60_000).unref();

const orders = buyers.map((buyer, i) => ({ id: `order-${i + 1}`, total: (i + 1) * 100, buyer }));

const ordersSubgraph = new ApolloServer({
  schema: buildSubgraphSchema({
    typeDefs: parse(`
      extend schema @link(url: "https://specs.apollo.dev/federation/v2.5", import: ["@key"])

      type Query {
        orders: [Order!]!
      }

      type Order {
        id: ID!
        total: Int!
        buyer: User
      }

      type User @key(fields: "id") {
        id: ID!
        orders: [Order!]!
      }
    `),
    resolvers: {
      Query: { orders: () => orders },
      Order: { buyer: (order) => ({ __typename: 'User', id: order.buyer }) },
      User: {
        __resolveReference: (user) => ({ id: user.id }),
        orders: (user) => orders.filter((o) => o.buyer === user.id),
      },
    },
  }),
});
const { url: ordersUrl } = await startStandaloneServer(ordersSubgraph, { listen: { port: 0, host: '127.0.0.1' } });

const gateway = new ApolloGateway({
  supergraphSdl: new IntrospectAndCompose({
    subgraphs: [
      { name: 'identity', url: `${identityUrl}/graphql` },
      { name: 'orders', url: ordersUrl },
    ],
  }),
  buildService: ({ name, url }) =>
    new RemoteGraphQLDataSource({
      url,
      willSendRequest({ request, context }) {
        if (name !== 'identity') return;
        if (context?.client) {
          // A client's request: its own credentials, or none — never the gateway's key.
          const { authorization } = context.client;
          if (authorization) request.http.headers.set('authorization', authorization);
        } else {
          // The gateway composing: it reads our SDL with its key.
          request.http.headers.set('authorization', `Bearer ${sdlKey}`);
        }
      },
    }),
});
const server = new ApolloServer({ gateway });
const { url: gatewayUrl } = await startStandaloneServer(server, {
  listen: { port: 0, host: '127.0.0.1' },
  context: async ({ req }) => ({ client: { authorization: req.headers.authorization } }),
});

let input = '';
for await (const chunk of process.stdin) input += chunk;
const answers = [];
let code = 0;
try {
  for (const { authorization, query, variables } of JSON.parse(input)) {
    const headers = { 'content-type': 'application/json' };
    if (authorization) headers.authorization = authorization;
    const response = await fetch(gatewayUrl, {
      method: 'POST',
      headers,
      body: JSON.stringify({ query, variables: variables ?? {} }),
    });
    answers.push({ status: response.status, body: await response.json() });
  }
  console.log(JSON.stringify(answers));
} catch (e) {
  console.error(`gateway request failed: ${e}`);
  code = 1;
}
await server.stop();
await ordersSubgraph.stop();
process.exit(code);
