/**
 * Constants of linux/netfilter/nfnetlink_conntrack.h, under the kernel's own names so that the
 * header can be read beside this file.
 */

// enum cntl_msg_types
export const IPCTNL_MSG_CT_NEW = 0;
export const IPCTNL_MSG_CT_GET = 1;
export const IPCTNL_MSG_CT_DELETE = 2;
export const IPCTNL_MSG_CT_GET_CTRZERO = 3;
export const IPCTNL_MSG_CT_GET_STATS_CPU = 4;
export const IPCTNL_MSG_CT_GET_STATS = 5;
export const IPCTNL_MSG_CT_GET_DYING = 6;
export const IPCTNL_MSG_CT_GET_UNCONFIRMED = 7;

// enum cntl_msg_exp_types (subsystem NFNL_SUBSYS_CTNETLINK_EXP)
export const IPCTNL_MSG_EXP_NEW = 0;
export const IPCTNL_MSG_EXP_GET = 1;
export const IPCTNL_MSG_EXP_DELETE = 2;
export const IPCTNL_MSG_EXP_GET_STATS_CPU = 3;

// enum ctattr_type
export const CTA_TUPLE_ORIG = 1;
export const CTA_TUPLE_REPLY = 2;
export const CTA_STATUS = 3;
export const CTA_PROTOINFO = 4;
export const CTA_HELP = 5;
export const CTA_NAT_SRC = 6;
export const CTA_TIMEOUT = 7;
export const CTA_MARK = 8;
export const CTA_COUNTERS_ORIG = 9;
export const CTA_COUNTERS_REPLY = 10;
export const CTA_USE = 11;
export const CTA_ID = 12;
export const CTA_NAT_DST = 13;
export const CTA_TUPLE_MASTER = 14;
export const CTA_SEQ_ADJ_ORIG = 15;
export const CTA_SEQ_ADJ_REPLY = 16;
export const CTA_SECMARK = 17; // obsolete
export const CTA_ZONE = 18;
export const CTA_SECCTX = 19;
export const CTA_TIMESTAMP = 20;
export const CTA_MARK_MASK = 21;
export const CTA_LABELS = 22;
export const CTA_LABELS_MASK = 23;
export const CTA_SYNPROXY = 24;
export const CTA_FILTER = 25;
export const CTA_STATUS_MASK = 26;
/**
 * Newer than the uapi header on the build machine (which ends at CTA_STATUS_MASK): Linux 6.18
 * sends it in events when nf_conntrack_timestamp=1, a u64 of CLOCK_REALTIME nanoseconds at which
 * the event was generated.
 */
export const CTA_TIMESTAMP_EVENT = 27;

// enum ctattr_tuple
export const CTA_TUPLE_IP = 1;
export const CTA_TUPLE_PROTO = 2;
export const CTA_TUPLE_ZONE = 3;

// enum ctattr_ip
export const CTA_IP_V4_SRC = 1;
export const CTA_IP_V4_DST = 2;
export const CTA_IP_V6_SRC = 3;
export const CTA_IP_V6_DST = 4;

// enum ctattr_l4proto
export const CTA_PROTO_NUM = 1;
export const CTA_PROTO_SRC_PORT = 2;
export const CTA_PROTO_DST_PORT = 3;
export const CTA_PROTO_ICMP_ID = 4;
export const CTA_PROTO_ICMP_TYPE = 5;
export const CTA_PROTO_ICMP_CODE = 6;
export const CTA_PROTO_ICMPV6_ID = 7;
export const CTA_PROTO_ICMPV6_TYPE = 8;
export const CTA_PROTO_ICMPV6_CODE = 9;

// enum ctattr_protoinfo
export const CTA_PROTOINFO_TCP = 1;
export const CTA_PROTOINFO_DCCP = 2;
export const CTA_PROTOINFO_SCTP = 3;

// enum ctattr_protoinfo_tcp
export const CTA_PROTOINFO_TCP_STATE = 1;
export const CTA_PROTOINFO_TCP_WSCALE_ORIGINAL = 2;
export const CTA_PROTOINFO_TCP_WSCALE_REPLY = 3;
export const CTA_PROTOINFO_TCP_FLAGS_ORIGINAL = 4;
export const CTA_PROTOINFO_TCP_FLAGS_REPLY = 5;

// enum ctattr_protoinfo_dccp
export const CTA_PROTOINFO_DCCP_STATE = 1;
export const CTA_PROTOINFO_DCCP_ROLE = 2;
export const CTA_PROTOINFO_DCCP_HANDSHAKE_SEQ = 3;
export const CTA_PROTOINFO_DCCP_PAD = 4;

// enum ctattr_protoinfo_sctp
export const CTA_PROTOINFO_SCTP_STATE = 1;
export const CTA_PROTOINFO_SCTP_VTAG_ORIGINAL = 2;
export const CTA_PROTOINFO_SCTP_VTAG_REPLY = 3;

// enum ctattr_counters
export const CTA_COUNTERS_PACKETS = 1;
export const CTA_COUNTERS_BYTES = 2;
export const CTA_COUNTERS32_PACKETS = 3; // old 32-bit counters, unused
export const CTA_COUNTERS32_BYTES = 4;
export const CTA_COUNTERS_PAD = 5;

// enum ctattr_tstamp
export const CTA_TIMESTAMP_START = 1;
export const CTA_TIMESTAMP_STOP = 2;
export const CTA_TIMESTAMP_PAD = 3;

// enum ctattr_nat
export const CTA_NAT_V4_MINIP = 1;
export const CTA_NAT_V4_MAXIP = 2;
export const CTA_NAT_PROTO = 3;
export const CTA_NAT_V6_MINIP = 4;
export const CTA_NAT_V6_MAXIP = 5;

// enum ctattr_protonat
export const CTA_PROTONAT_PORT_MIN = 1;
export const CTA_PROTONAT_PORT_MAX = 2;

// enum ctattr_seqadj
export const CTA_SEQADJ_CORRECTION_POS = 1;
export const CTA_SEQADJ_OFFSET_BEFORE = 2;
export const CTA_SEQADJ_OFFSET_AFTER = 3;

// enum ctattr_synproxy
export const CTA_SYNPROXY_ISN = 1;
export const CTA_SYNPROXY_ITS = 2;
export const CTA_SYNPROXY_TSOFF = 3;

// enum ctattr_help
export const CTA_HELP_NAME = 1;
export const CTA_HELP_INFO = 2;

// enum ctattr_secctx
export const CTA_SECCTX_NAME = 1;

// enum ctattr_stats_cpu
export const CTA_STATS_SEARCHED = 1; // no longer used
export const CTA_STATS_FOUND = 2;
export const CTA_STATS_NEW = 3; // no longer used
export const CTA_STATS_INVALID = 4;
export const CTA_STATS_IGNORE = 5; // no longer used
export const CTA_STATS_DELETE = 6; // no longer used
export const CTA_STATS_DELETE_LIST = 7; // no longer used
export const CTA_STATS_INSERT = 8;
export const CTA_STATS_INSERT_FAILED = 9;
export const CTA_STATS_DROP = 10;
export const CTA_STATS_EARLY_DROP = 11;
export const CTA_STATS_ERROR = 12;
export const CTA_STATS_SEARCH_RESTART = 13;
export const CTA_STATS_CLASH_RESOLVE = 14;
export const CTA_STATS_CHAIN_TOOLONG = 15;

// enum ctattr_expect_stats
export const CTA_STATS_EXP_NEW = 1;
export const CTA_STATS_EXP_CREATE = 2;
export const CTA_STATS_EXP_DELETE = 3;

// enum ctattr_stats_global
export const CTA_STATS_GLOBAL_ENTRIES = 1;
export const CTA_STATS_GLOBAL_MAX_ENTRIES = 2;

// IP protocol numbers that carry conntrack tuples with their own fields or state machines.
export const IPPROTO_ICMP = 1;
export const IPPROTO_TCP = 6;
export const IPPROTO_UDP = 17;
export const IPPROTO_DCCP = 33;
export const IPPROTO_GRE = 47;
export const IPPROTO_ICMPV6 = 58;
export const IPPROTO_SCTP = 132;
export const IPPROTO_UDPLITE = 136;
