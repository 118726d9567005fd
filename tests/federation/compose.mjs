// Composes wechat-identity's subgraph SDL with another team's subgraph that uses everyday names
// (`Message`, `App`, `Identity`, `Query.messages`, `Mutation.sendMessage` …) in Apollo's
// composition library, the one Apollo Gateway and Rover use; no server is started.
//
//   node compose.mjs <file holding our subgraph SDL>
//
// Prints `{"errors": [{"code", "message"}…]}` on stdout (tests/it/federation_compose.rs asserts
// there are none); exits non-zero only if it cannot run.
import { readFileSync } from 'node:fs';
import { composeServices } from '@apollo/composition';
import { parse } from 'graphql';

const [sdlFile] = process.argv.slice(2);
if (!sdlFile) {
  console.error('usage: node compose.mjs <subgraph SDL file>');
  process.exit(2);
}

// A messaging team's subgraph: what any team may call its own things.
const everyday = `
  extend schema @link(url: "https://specs.apollo.dev/federation/v2.5", import: ["@key", "@shareable"])

  type Query {
    messages(first: Int, channel: MessageChannel): [Message!]!
    message(id: ID!): Message
    messageTemplates: [MessageTemplate!]!
    apps: [App!]!
    identity(provider: String!): Identity
  }

  type Mutation {
    sendMessage(input: SendMessageInput!): Message!
  }

  enum MessageChannel {
    EMAIL
    SMS
  }

  type MessageTemplate {
    id: ID!
    body: String!
  }

  input SendMessageInput {
    to: ID!
    body: String!
  }

  enum MessageStatus {
    DRAFT
    POSTED
  }

  type Message @key(fields: "id") {
    id: ID!
    body: String!
    status: MessageStatus!
    channel: MessageChannel!
    sender: User!
  }

  type App {
    id: ID!
    name: String!
  }

  type Identity {
    provider: String!
    subject: String!
  }

  type User @key(fields: "id") {
    id: ID!
    messages: [Message!]!
  }
`;

const result = composeServices([
  { name: 'identity', url: 'http://identity.invalid/graphql', typeDefs: parse(readFileSync(sdlFile, 'utf8')) },
  { name: 'messaging', url: 'http://messaging.invalid/graphql', typeDefs: parse(everyday) },
]);
const errors = (result.errors ?? []).map((e) => ({ code: e.extensions?.code ?? null, message: e.message }));
console.log(JSON.stringify({ errors }));
