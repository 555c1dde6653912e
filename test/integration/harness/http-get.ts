/**
 * `ip netns exec NS node http-get.js URL`: the exporter listens inside the test namespace, which
 * the test process cannot reach, so requests are made from inside. Prints the status on the first
 * line and the body after it.
 */
const url = process.argv[2];
if (url === undefined) throw new Error('usage: http-get.js URL');
try {
  const res = await fetch(url, { signal: AbortSignal.timeout(10_000) });
  process.stdout.write(`${res.status}\n${await res.text()}`);
} catch (err) {
  process.stdout.write(`0\n${err instanceof Error ? err.message : String(err)}`);
}
