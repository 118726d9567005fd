// Another team's subgraph joining ours, for real: starts a small "orders" subgraph, composes it
// with wechat-identity's subgraph (fetched live from the running server through `_service { sdl }`)
// in Apollo Gateway, and runs one query through the gateway that joins both.
//
//   node gateway.mjs <identity base URL> <API key> <buyer user id>...
//
// Order i (1-based) is `order-i`, total i * 100, bought by the i-th id. The gateway sends the API
// key to our subgraph only. Prints the gateway's JSON answer on stdout (tests/it/federation.rs
// asserts on it); exits non-zero if composition, the gateway or the query fails.
import { ApolloServer } from '@apollo/server';
import { startStandaloneServer } from '@apollo/server/standalone';
import { ApolloGateway, IntrospectAndCompose, RemoteGraphQLDataSource } from '@apollo/gateway';
import { buildSubgraphSchema } from '@apollo/subgraph';
import { parse } from 'graphql';

const [identityUrl, apiKey, ...buyers] = process.argv.slice(2);
if (!identityUrl || !apiKey || buyers.length === 0) {
  console.error('usage: node gateway.mjs <identity base URL> <API key> <buyer user id>...');
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
        buyer: User!
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
      willSendRequest({ request }) {
        if (name === 'identity') request.http.headers.set('authorization', `Bearer ${apiKey}`);
      },
    }),
});
const server = new ApolloServer({ gateway });
const { url: gatewayUrl } = await startStandaloneServer(server, { listen: { port: 0, host: '127.0.0.1' } });

const query = `
  query Joined($id: ID!) {
    orders {
      id
      total
      buyer { id unionid miniProgramIdentities { appId openid } orders { id } }
    }
    user(id: $id) { id orders { total } }
  }
`;
let code = 0;
try {
  const response = await fetch(gatewayUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ query, variables: { id: buyers[0] } }),
  });
  const body = await response.json();
  console.log(JSON.stringify(body));
  if (!response.ok || body.errors) code = 1;
} catch (e) {
  console.error(`gateway query failed: ${e}`);
  code = 1;
}
await server.stop();
await ordersSubgraph.stop();
process.exit(code);
