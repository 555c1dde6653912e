/*
 * Paced conntrack load on the namespace's loopback, in C so the generator costs less CPU than the
 * consumers it feeds. Stops by itself and prints one JSON line.
 *
 *   flood udp FLOWS RATE        one datagram to port 9 (dropped on input by the bench ruleset) of
 *                               each of FLOWS addresses in 127.0.0.0/8: FLOWS new UDP flows
 *   flood tcp CONNS RATE PORT   CONNS connect/accept/close cycles to a listener on PORT, each to its
 *                               own 127.x.y.z: NEW, the state UPDATEs, and a DESTROY once the
 *                               flow's TIME_WAIT timeout (short in the bench namespace) expires
 *
 * Pacing: the i-th item is due at start + i/RATE on CLOCK_MONOTONIC; the generator sleeps until
 * the next batch is due and catches up without sleeping when it is late.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define UDP_BATCH 64
#define FIRST_ADDR (0x7f000000u + 256u) /* 127.0.1.0: clear of 127.0.0.0 and 127.0.0.1 */
#define MAX_ITEMS (0x7fffffffu - FIRST_ADDR) /* up to 127.255.255.254, never the broadcast */

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* Sleeps until item i is due. */
static void pace(double start, unsigned long i, double rate) {
  double due = start + (double)i / rate;
  if (due <= now()) return;
  struct timespec t = {.tv_sec = (time_t)due, .tv_nsec = (long)((due - (double)(time_t)due) * 1e9)};
  while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &t, NULL) == EINTR) {
  }
}

static struct sockaddr_in addr_of(unsigned long i, unsigned short port) {
  return (struct sockaddr_in){
      .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(FIRST_ADDR + (unsigned)i)};
}

static unsigned long udp_flood(unsigned long flows, double rate, double start, unsigned long *errors) {
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  struct sockaddr_in src = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7f000001u)};
  if (fd < 0 || bind(fd, (struct sockaddr *)&src, sizeof src) < 0) { perror("udp socket"); exit(1); }
  static struct sockaddr_in dst[UDP_BATCH];
  static struct mmsghdr msgs[UDP_BATCH];
  static struct iovec iov = {.iov_base = "x", .iov_len = 1};
  unsigned long sent = 0;
  for (unsigned long i = 0; i < flows;) {
    pace(start, i, rate);
    unsigned n = flows - i < UDP_BATCH ? (unsigned)(flows - i) : UDP_BATCH;
    for (unsigned k = 0; k < n; k++) {
      dst[k] = addr_of(i + k, 9);
      msgs[k].msg_hdr = (struct msghdr){.msg_name = &dst[k], .msg_namelen = sizeof dst[k], .msg_iov = &iov, .msg_iovlen = 1};
    }
    /* sendmmsg stops at the first failure (e.g. a full table drops the packet): count and skip it */
    for (unsigned k = 0; k < n;) {
      int r = sendmmsg(fd, msgs + k, n - k, 0);
      if (r < 0) { (*errors)++; k++; continue; }
      sent += (unsigned)r;
      k += (unsigned)r;
    }
    i += n;
  }
  close(fd);
  return sent;
}

static unsigned long tcp_churn(unsigned long conns, double rate, unsigned short port, double start, unsigned long *errors) {
  int one = 1;
  int lfd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in any = {.sin_family = AF_INET, .sin_port = htons(port)};
  setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (lfd < 0 || bind(lfd, (struct sockaddr *)&any, sizeof any) < 0 || listen(lfd, 4096) < 0) { perror("listen"); exit(1); }
  unsigned long done = 0;
  for (unsigned long i = 0; i < conns; i++) {
    pace(start, i, rate);
    struct sockaddr_in dst = addr_of(i, port);
    int c = socket(AF_INET, SOCK_STREAM, 0);
    if (c < 0 || connect(c, (struct sockaddr *)&dst, sizeof dst) < 0) {
      (*errors)++;
      if (c >= 0) close(c);
      continue;
    }
    int s = accept(lfd, NULL, NULL);
    /* client FIN first, then the server's: the flow walks FIN_WAIT, CLOSE_WAIT, LAST_ACK, TIME_WAIT */
    close(c);
    if (s < 0) { (*errors)++; continue; }
    close(s);
    done++;
  }
  close(lfd);
  return done;
}

int main(int argc, char **argv) {
  int tcp = argc == 5 && strcmp(argv[1], "tcp") == 0;
  if (!tcp && !(argc == 4 && strcmp(argv[1], "udp") == 0)) {
    fprintf(stderr, "usage: flood udp FLOWS RATE | flood tcp CONNS RATE PORT\n");
    return 2;
  }
  unsigned long n = strtoul(argv[2], NULL, 10);
  double rate = strtod(argv[3], NULL);
  unsigned long port = tcp ? strtoul(argv[4], NULL, 10) : 9;
  if (n == 0 || n > MAX_ITEMS || !(rate > 0) || port == 0 || port > 65535) {
    fprintf(stderr, "flood: count must be 1..%u, rate > 0, port 1..65535\n", MAX_ITEMS);
    return 2;
  }
  unsigned long errors = 0;
  double start = now();
  unsigned long done = tcp ? tcp_churn(n, rate, (unsigned short)port, start, &errors) : udp_flood(n, rate, start, &errors);
  double seconds = now() - start;
  struct rusage ru; /* the kernel's work for each packet (conntrack, nftables, event delivery) is ours */
  getrusage(RUSAGE_SELF, &ru);
  double cpu = (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) + (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
  printf("{\"kind\":\"%s\",\"done\":%lu,\"errors\":%lu,\"seconds\":%.3f,\"cpuSeconds\":%.3f}\n", argv[1], done, errors, seconds, cpu);
  return 0;
}
