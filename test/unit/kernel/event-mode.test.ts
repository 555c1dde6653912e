import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { eventModeNotice } from '../../../src/kernel/event-mode.js';
import { OwnProcFiles, readSysctl } from '../../../src/kernel/proc.js';

describe('nf_conntrack_events at start-up', () => {
  it('says what each mode means for flows created while the exporter is down', () => {
    assert.equal(eventModeNotice(2).level, 'info');
    assert.match(eventModeNotice(2).msg, /never send events/);
    assert.equal(eventModeNotice(1).level, 'info');
    assert.equal(eventModeNotice(0).level, 'warn');
    assert.equal(eventModeNotice(undefined).level, 'warn');
    assert.equal(eventModeNotice(7).mode, 7);
  });

  it('reads the sysctl, or nothing', async () => {
    const root = mkdtempSync(join(tmpdir(), 'ctx-mode-'));
    const files = new OwnProcFiles(root);
    try {
      assert.equal(await readSysctl(files, 'nf_conntrack_events'), undefined);
      mkdirSync(join(root, 'sys/net/netfilter'), { recursive: true });
      writeFileSync(join(root, 'sys/net/netfilter/nf_conntrack_events'), '1\n');
      assert.equal(await readSysctl(files, 'nf_conntrack_events'), 1);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
