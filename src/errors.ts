/**
 * One error type for everything conntrack-exporter raises on purpose. Callers and tests branch on
 * `code`, never on message text.
 */
export type ErrorCode =
  /** A message or attribute ends before its declared length. */
  | 'CT_ERR_TRUNCATED'
  /** An attribute's payload has the wrong length for its type. */
  | 'CT_ERR_ATTR_LENGTH'
  /** A scalar attribute carries the nested flag, or a nest holds no attribute stream. */
  | 'CT_ERR_NESTING'
  /**
   * A reply lacks what the kernel always sends: an attribute (a flow's CTA_ID or original tuple and
   * its protocol, NETNSA_NSID) or, for a request that has one, the reply message itself.
   */
  | 'CT_ERR_MISSING_ATTR'
  /** A message is not the ctnetlink message the caller asked to decode. */
  | 'CT_ERR_MESSAGE_TYPE'
  /** The kernel answered a request with NLMSG_ERROR; `errno` holds the positive error number. */
  | 'CT_ERR_KERNEL'
  /** A dump stayed inconsistent (NLM_F_DUMP_INTR) after every retry. */
  | 'CT_ERR_DUMP_INTERRUPTED'
  /** The kernel did not answer a request in time. */
  | 'CT_ERR_TIMEOUT'
  /** The process lacks CAP_NET_ADMIN for ctnetlink. */
  | 'CT_ERR_PERMISSION'
  /** The netlink socket failed or was closed under a request. */
  | 'CT_ERR_SOCKET'
  /** A namespace discovery scan could not read /proc, /var/run/netns or its own namespace. */
  | 'CT_ERR_NETNS_SCAN'
  /** A path where namespaces are found is not a network namespace, or does not open. */
  | 'CT_ERR_NETNS_REFUSED'
  /** A command-line flag or environment value is unknown or malformed. */
  | 'CT_ERR_CONFIG';

export class ConntrackError extends Error {
  override readonly name = 'ConntrackError';
  readonly code: ErrorCode;
  /** Byte offset in the message being decoded, when the error comes from a decoder. */
  readonly offset: number | undefined;
  /** Kernel errno (positive), for CT_ERR_KERNEL and socket errors. */
  readonly errno: number | undefined;

  constructor(
    code: ErrorCode,
    message: string,
    options: { offset?: number; errno?: number; cause?: unknown } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.offset = options.offset;
    this.errno = options.errno;
  }
}
