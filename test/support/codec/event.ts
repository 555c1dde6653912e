/**
 * A conntrack event fully decoded. The exporter classifies events with eventType
 * (src/ctnetlink/event.ts) and reads them with the lean decoder; this is for tests and tools.
 */
import { type EventType, eventType } from '../../../src/ctnetlink/event.js';
import { ConntrackError } from '../../../src/errors.js';
import { decodeFlow, type Flow } from './flow.js';

export interface ConntrackEvent {
  type: EventType;
  flow: Flow;
}

/** Decodes one event message at buf[start, end); a message that is not a CT event is refused. */
export function decodeEvent(
  buf: Buffer,
  type: number,
  flags: number,
  start: number,
  end: number,
): ConntrackEvent {
  const et = eventType(type, flags);
  if (et === undefined) {
    throw new ConntrackError(
      'CT_ERR_MESSAGE_TYPE',
      `message type 0x${type.toString(16)} is not a conntrack event`,
      { offset: start },
    );
  }
  return { type: et, flow: decodeFlow(buf, start, end) };
}
