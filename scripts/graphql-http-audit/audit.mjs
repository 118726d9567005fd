// Runs the graphql-http package's server audit (GraphQL over HTTP spec conformance) against a
// running service: `node audit.mjs http://127.0.0.1:8080/graphql`. Prints every audit's
// result; exits 1 when any MUST or SHOULD fails (a MAY that fails is printed, not fatal).
import { serverAudits } from 'graphql-http';

const url = process.argv[2];
if (!url) {
  console.error('usage: node audit.mjs <graphql endpoint URL>');
  process.exit(2);
}

const results = [];
for (const audit of serverAudits({ url })) {
  results.push(await audit.fn());
}

let failed = 0;
for (const result of results) {
  const level = result.name.split(' ')[0];
  if (result.status === 'ok') {
    console.log(`ok    ${result.id} ${result.name}`);
    continue;
  }
  const fatal = level === 'MUST' || level === 'SHOULD';
  if (fatal) failed += 1;
  console.log(`${fatal ? 'FAIL' : 'may '}  ${result.id} ${result.name}: ${result.reason}`);
}
const ok = results.filter((r) => r.status === 'ok').length;
console.log(`${ok}/${results.length} audits pass; ${failed} MUST/SHOULD failures`);
process.exit(failed === 0 ? 0 : 1);
