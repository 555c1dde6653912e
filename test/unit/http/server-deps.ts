/** What the HTTP tests give buildServer: a fixed render, or one held until the test lets it go. */
import type { ServerDeps } from '../../../src/http/server.js';

export function deps(over: Partial<ServerDeps> = {}): ServerDeps {
  return {
    telemetryPath: '/metrics',
    version: '9.9.9',
    render: async () => '# HELP x y\n# TYPE x gauge\nx 1\n',
    isReady: () => true,
    ...over,
  };
}

/** A render that waits until `held.release()`, counting its calls. */
export function heldRender(body = 'x 1\n') {
  const held = { calls: 0, release: () => {} };
  const gate = new Promise<void>((resolve) => {
    held.release = resolve;
  });
  const render = async () => {
    held.calls++;
    await gate;
    return body;
  };
  return { held, render };
}
