/*
 * The floor: the cheapest ctnetlink event consumer, what the kernel itself costs. It joins the
 * NEW/UPDATE/DESTROY groups with a 64 MiB buffer and NETLINK_NO_ENOBUFS, drains the socket with
 * recvmmsg, counts messages by kind and nothing else. Prints "ready" once subscribed; prints its
 * counts as one JSON line on SIGUSR1 (and keeps going) or SIGTERM (and exits).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#define BATCH 256
#define SLOT 8192

static volatile sig_atomic_t report, stop;
static void on_signal(int sig) { report = 1; if (sig == SIGTERM) stop = 1; }

static unsigned char bufs[BATCH][SLOT];

int main(void) {
  int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_NETFILTER);
  struct sockaddr_nl sa = {.nl_family = AF_NETLINK};
  int one = 1, rcvbuf = 64 << 20;
  int groups[] = {NFNLGRP_CONNTRACK_NEW, NFNLGRP_CONNTRACK_UPDATE, NFNLGRP_CONNTRACK_DESTROY};
  if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0) { perror("socket/bind"); return 1; }
  for (int i = 0; i < 3; i++)
    if (setsockopt(fd, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, &groups[i], sizeof groups[i]) < 0) { perror("membership"); return 1; }
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof rcvbuf) < 0) { perror("SO_RCVBUFFORCE"); return 1; }
  if (setsockopt(fd, SOL_NETLINK, NETLINK_NO_ENOBUFS, &one, sizeof one) < 0) { perror("NO_ENOBUFS"); return 1; }

  struct sigaction act = {.sa_handler = on_signal}; /* no SA_RESTART: recvmmsg returns EINTR */
  sigaction(SIGTERM, &act, NULL);
  sigaction(SIGUSR1, &act, NULL);

  static struct mmsghdr msgs[BATCH];
  static struct iovec iov[BATCH];
  for (int i = 0; i < BATCH; i++) {
    iov[i] = (struct iovec){.iov_base = bufs[i], .iov_len = SLOT};
    msgs[i].msg_hdr = (struct msghdr){.msg_iov = &iov[i], .msg_iovlen = 1};
  }
  unsigned long long created = 0, updated = 0, destroyed = 0, other = 0, truncated = 0;
  printf("ready\n");
  fflush(stdout);

  for (;;) {
    if (report) {
      __u32 mem[SK_MEMINFO_VARS] = {0};
      socklen_t len = sizeof mem;
      getsockopt(fd, SOL_SOCKET, SO_MEMINFO, mem, &len);
      printf("{\"new\":%llu,\"update\":%llu,\"destroy\":%llu,\"other\":%llu,\"truncated\":%llu,\"drops\":%u}\n",
             created, updated, destroyed, other, truncated, mem[SK_MEMINFO_DROPS]);
      fflush(stdout);
      report = 0;
      if (stop) return 0;
    }
    int n = recvmmsg(fd, msgs, BATCH, MSG_WAITFORONE, NULL);
    if (n < 0) {
      if (errno == EINTR) continue;
      perror("recvmmsg");
      return 1;
    }
    for (int i = 0; i < n; i++) {
      if (msgs[i].msg_hdr.msg_flags & MSG_TRUNC) truncated++;
      int left = (int)msgs[i].msg_len;
      for (struct nlmsghdr *h = (struct nlmsghdr *)bufs[i]; NLMSG_OK(h, left); h = NLMSG_NEXT(h, left)) {
        unsigned type = NFNL_MSG_TYPE(h->nlmsg_type);
        if (NFNL_SUBSYS_ID(h->nlmsg_type) != NFNL_SUBSYS_CTNETLINK) other++;
        else if (type == IPCTNL_MSG_CT_DELETE) destroyed++;
        else if (type != IPCTNL_MSG_CT_NEW) other++;
        else if (h->nlmsg_flags & (NLM_F_CREATE | NLM_F_EXCL)) created++;
        else updated++;
      }
    }
  }
}
