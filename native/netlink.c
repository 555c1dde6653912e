/*
 * The project's netlink socket, as small as it can be: open (optionally inside another network
 * namespace), integer socket options, send, and a batched receive. Node's event loop polls the fd;
 * on each wake-up recvmmsg drains up to `slots` datagrams at a time into one ArrayBuffer owned by
 * JS, and JS gets ONE callback per batch with the datagrams' offsets, lengths and namespace ids in
 * a shared Int32Array. Nothing is allocated per datagram or per batch, and the kernel's drop count
 * for the socket (SO_MEMINFO) is read once per batch, so lost events are noticed without a timer.
 *
 * JS must consume a batch inside the callback: the next batch overwrites the same memory.
 *
 * With `chunks` > 0 a reader thread does the receiving instead, into a ring of that many chunks,
 * and wakes the event loop per filled chunk. The kernel's work for a dump happens inside the
 * reader's recvmsg calls, so it runs on another core while JS decodes the previous chunk: a
 * million-flow dump takes the longer of the two, not their sum.
 *
 * Every N-API status is checked: a failed call inside a function JS called throws a JS error and
 * returns (NAPI_CALL, as node-addon-api's examples do); inside a libuv callback, where nobody
 * could catch it, the batch or error report is skipped. Every size JS passes is range-checked
 * (a RangeError naming the argument) before anything is allocated, and every error path releases
 * what was made before it: descriptors, memory, references, the reader thread's wake eventfd.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <node_api.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#ifndef SOL_NETLINK
#define SOL_NETLINK 270
#endif
#ifndef NETLINK_LISTEN_ALL_NSID
#define NETLINK_LISTEN_ALL_NSID 8
#endif

/* Sizes JS may ask for. The areas are chunks * slots * slotSize bytes of one ArrayBuffer, which V8
   allocates or aborts the process: capped well below what a host would refuse. */
#define MAX_SLOTS 4096
#define MIN_SLOT_SIZE 1024
#define MAX_SLOT_SIZE (1 << 20)
#define MAX_CHUNKS 64
#define MAX_AREA_BYTES ((size_t)64 << 20)
#define MAX_PAUSE_MS 1000
/* Socket buffer sizes setInt accepts (SO_RCVBUF, SO_SNDBUF and their FORCE forms). */
#define MIN_SOCKET_BUFFER 1024
#define MAX_SOCKET_BUFFER (1 << 30)

/* Each wake-up reads at most this many batches before yielding to the event loop. */
#define ROUNDS_PER_WAKEUP 32
/* Fields per datagram in the meta array: offset, length (negative if truncated), nsid or -1. */
#define META_FIELDS 3

typedef struct {
  int fd;
  uint32_t port_id;
  napi_env env;
  uv_poll_t poll;
  /* After draining the socket, polling pauses this long so that events gather into big batches:
     one wake-up per pause instead of one per event, the way NICs coalesce interrupts. */
  uv_timer_t resume;
  unsigned pause_ms;
  int open_handles;
  int polling;
  int closed;         /* close() was called (or the external was collected) */
  int handle_closed;  /* libuv has released the poll handle and the fd is closed */
  int finalized;      /* JS no longer holds the external */
  unsigned slots;
  size_t slot_size;
  uint8_t *data;    /* chunks * slots * slot_size bytes, inside the JS ArrayBuffer `data_ref` */
  int32_t *meta;    /* chunks * slots * META_FIELDS, inside `meta_ref` */
  /* Reader thread mode (chunks > 0): the thread fills chunk `head`, JS consumes chunk `tail`. */
  unsigned chunks;
  pthread_t thread;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int sync_inited; /* mu and cv are initialised (destroyed with the struct) */
  uv_async_t async;
  int wake_fd;
  unsigned head, tail, filled;
  unsigned *counts;
  uint32_t *losses;
  int stopping;
  int thread_errno;
  napi_ref data_ref, meta_ref, on_batch, on_error, self_ref;
  napi_async_context actx;
  struct mmsghdr *msgs;
  struct iovec *iov;
  char *ctrl;
  struct sockaddr_nl *names; /* each datagram's sender */
  /* Datagrams not sent by the kernel (sender port id not 0), dropped here; the reader thread adds,
     the event loop takes (atomically). */
  uint32_t rejected;
  uint32_t last_drops;
} nl_socket;

#define CTRL_SPACE CMSG_SPACE(sizeof(int))

/* A failed N-API call: throws unless the call left an exception pending. Returns NULL. */
static napi_value napi_failed(napi_env env, const char *call) {
  bool pending = false;
  if (napi_is_exception_pending(env, &pending) == napi_ok && pending) return NULL;
  const napi_extended_error_info *info = NULL;
  const char *why = napi_get_last_error_info(env, &info) == napi_ok && info && info->error_message
                        ? info->error_message
                        : "unknown error";
  char msg[256];
  snprintf(msg, sizeof msg, "netlink addon: %s failed: %s", call, why);
  napi_throw_error(env, NULL, msg);
  return NULL;
}

/* For functions JS calls: a failed N-API call throws a JS error and returns NULL (undefined). */
#define NAPI_CALL(env, call)                                   \
  do {                                                         \
    if ((call) != napi_ok) return napi_failed((env), #call);   \
  } while (0)

/* Where nobody can catch a JS error (libuv callbacks): whether the call succeeded. */
#define NAPI_OK(call) ((call) == napi_ok)

static napi_value throw_errno(napi_env env, const char *syscall, int err) {
  char msg[200];
  snprintf(msg, sizeof msg, "%s: %s", syscall, strerror(err));
  napi_value error, text, errnum, name;
  NAPI_CALL(env, napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &text));
  NAPI_CALL(env, napi_create_error(env, NULL, text, &error));
  NAPI_CALL(env, napi_create_int32(env, err, &errnum));
  NAPI_CALL(env, napi_set_named_property(env, error, "errno", errnum));
  NAPI_CALL(env, napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &name));
  NAPI_CALL(env, napi_set_named_property(env, error, "syscall", name));
  NAPI_CALL(env, napi_throw(env, error));
  return NULL;
}

/* A RangeError naming the argument, e.g. "slots must be 1..4096 (got 0)". Returns 0. */
static int throw_range(napi_env env, const char *what, double got, double min, double max) {
  char msg[200];
  snprintf(msg, sizeof msg, "%s must be %.0f..%.0f (got %g)", what, min, max, got);
  if (napi_throw_range_error(env, "ERR_OUT_OF_RANGE", msg) != napi_ok) napi_failed(env, "napi_throw_range_error");
  return 0;
}

/* A TypeError (code ERR_INVALID_ARG_TYPE); NULL. */
static napi_value throw_type(napi_env env, const char *msg) {
  if (napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", msg) != napi_ok) napi_failed(env, "napi_throw_type_error");
  return NULL;
}

static napi_value undefined(napi_env env) {
  napi_value u;
  NAPI_CALL(env, napi_get_undefined(env, &u));
  return u;
}

/* Reads argv and the socket from argv[0]; NULL (with a JS exception) if closed or malformed. */
static nl_socket *socket_arg(napi_env env, napi_callback_info info, size_t want, napi_value *argv) {
  size_t argc = want;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < want) {
    throw_type(env, "wrong number of arguments");
    return NULL;
  }
  nl_socket *s = NULL;
  if (napi_get_value_external(env, argv[0], (void **)&s) != napi_ok || s == NULL) {
    throw_type(env, "not a netlink socket");
    return NULL;
  }
  if (s->closed) {
    throw_errno(env, "netlink socket", EBADF);
    return NULL;
  }
  return s;
}

/* Reads argument `what` as an integer in min..max: a TypeError if it is no number, a RangeError
   naming it if it is not an integer in range (no silent truncation of 1.5, NaN or 2^32). */
static int int_arg(napi_env env, napi_value v, const char *what, int32_t min, int32_t max, int32_t *out) {
  double d;
  if (napi_get_value_double(env, v, &d) != napi_ok) {
    char msg[120];
    snprintf(msg, sizeof msg, "%s must be a number", what);
    return throw_type(env, msg), 0;
  }
  if (!(d >= min && d <= max) || d != (double)(int32_t)d) return throw_range(env, what, d, min, max);
  *out = (int32_t)d;
  return 1;
}

static uint32_t read_drops(int fd) {
  uint32_t mem[SK_MEMINFO_VARS];
  socklen_t len = sizeof mem;
  if (getsockopt(fd, SOL_SOCKET, SO_MEMINFO, mem, &len) != 0 || len < (SK_MEMINFO_DROPS + 1) * sizeof(uint32_t))
    return 0;
  return mem[SK_MEMINFO_DROPS];
}

/* What to make inside another namespace: a netlink socket of `protocol`, or `path` opened. */
typedef struct {
  int protocol;
  const char *path;
} netns_task;

/* Makes `task` inside the network namespace open as `target` by switching this thread there and
   back; returns the new descriptor, or -1 with *err set. The namespace descriptor is the caller's
   (it keeps it open and closes it): a path, opened here, could by now name another namespace (a
   /proc/PID/ns/net whose PID was reused). */
static int in_netns(int target, const netns_task *task, int *err) {
  int self = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  if (self < 0) return *err = errno, -1;
  int fd = -1;
  if (setns(target, CLONE_NEWNET) != 0) {
    *err = errno;
  } else {
    fd = task->path != NULL ? open(task->path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
                            : socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, task->protocol);
    if (fd < 0) *err = errno;
    /* The main thread must never stay in another namespace: everything it opens later would. */
    if (setns(self, CLONE_NEWNET) != 0) abort();
  }
  close(self);
  return fd;
}

static void free_socket(nl_socket *s) {
  if (s->sync_inited) {
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
  }
  free(s->counts);
  free(s->losses);
  free(s->msgs);
  free(s->iov);
  free(s->ctrl);
  free(s->names);
  free(s);
}

static void finalize(napi_env env, void *data, void *hint);
static void on_closed(uv_handle_t *handle);
static void begin_close(nl_socket *s);

static void release_refs(nl_socket *s) {
  napi_env env = s->env;
  napi_ref *refs[] = {&s->data_ref, &s->meta_ref, &s->on_batch, &s->on_error, &s->self_ref};
  for (size_t i = 0; i < sizeof refs / sizeof refs[0]; i++) {
    if (*refs[i]) {
      (void)napi_delete_reference(env, *refs[i]); /* releasing: nothing to do if it fails */
      *refs[i] = NULL;
    }
  }
  if (s->actx) {
    (void)napi_async_destroy(env, s->actx);
    s->actx = NULL;
  }
}

/* Calls a JS callback from a libuv callback. A JS exception thrown by it is uncaught, as in any
   Node callback (the process's uncaughtException decides); a failed N-API call skips the call. */
static void call_js(nl_socket *s, napi_ref fn_ref, size_t argc, napi_value *argv) {
  napi_env env = s->env;
  napi_value fn, recv, result;
  if (fn_ref == NULL || !NAPI_OK(napi_get_reference_value(env, fn_ref, &fn)) || fn == NULL) return;
  if (!NAPI_OK(napi_get_global(env, &recv))) return; /* napi_make_callback wants an object as `this` */
  if (napi_make_callback(env, s->actx, recv, fn, argc, argv, &result) == napi_pending_exception) {
    napi_value exc;
    if (NAPI_OK(napi_get_and_clear_last_exception(env, &exc))) napi_fatal_exception(env, exc);
  }
}

static void report_error(nl_socket *s, const char *syscall, int err) {
  napi_value argv[2];
  if (!NAPI_OK(napi_create_int32(s->env, err, &argv[0])) ||
      !NAPI_OK(napi_create_string_utf8(s->env, syscall, NAPI_AUTO_LENGTH, &argv[1])))
    return;
  call_js(s, s->on_error, 2, argv);
}

static int nsid_of(struct msghdr *h) {
  for (struct cmsghdr *c = CMSG_FIRSTHDR(h); c != NULL; c = CMSG_NXTHDR(h, c)) {
    if (c->cmsg_level == SOL_NETLINK && c->cmsg_type == NETLINK_LISTEN_ALL_NSID &&
        c->cmsg_len >= CMSG_LEN(sizeof(int))) {
      int id;
      memcpy(&id, CMSG_DATA(c), sizeof id);
      return id;
    }
  }
  return -1;
}

static void on_readable(uv_poll_t *handle, int status, int events);

/* One recvmmsg into chunk `c`; fills its meta with the datagrams the kernel sent and drops the
   others: any process with CAP_NET_ADMIN over a namespace may send to the conntrack groups (or
   to our port), and only the kernel is believed (sender port id 0, as systemd's device monitor
   checks). Returns the count kept, or -1 with errno set. */
static int receive_chunk(nl_socket *s, unsigned c) {
  struct mmsghdr *msgs = s->msgs + (size_t)c * s->slots;
  for (unsigned i = 0; i < s->slots; i++) {
    msgs[i].msg_hdr.msg_controllen = CTRL_SPACE;
    msgs[i].msg_hdr.msg_namelen = sizeof(struct sockaddr_nl);
    msgs[i].msg_hdr.msg_flags = 0;
  }
  int n = recvmmsg(s->fd, msgs, s->slots, MSG_DONTWAIT, NULL);
  if (n < 0) return -1;
  size_t base = (size_t)c * s->slots;
  int kept = 0;
  for (int i = 0; i < n; i++) {
    const struct sockaddr_nl *from = msgs[i].msg_hdr.msg_name;
    if (msgs[i].msg_hdr.msg_namelen < sizeof *from || from->nl_pid != 0) {
      __atomic_fetch_add(&s->rejected, 1, __ATOMIC_RELAXED);
      continue;
    }
    int32_t *m = s->meta + (base + (size_t)kept++) * META_FIELDS;
    m[0] = (int32_t)((base + (size_t)i) * s->slot_size);
    m[1] = (msgs[i].msg_hdr.msg_flags & MSG_TRUNC) ? -(int32_t)msgs[i].msg_len : (int32_t)msgs[i].msg_len;
    m[2] = nsid_of(&msgs[i].msg_hdr);
  }
  return kept;
}

static uint32_t take_losses(nl_socket *s) {
  uint32_t drops = read_drops(s->fd);
  uint32_t lost = drops - s->last_drops;
  s->last_drops = drops;
  return lost;
}

static void deliver(nl_socket *s, unsigned count, uint32_t lost, unsigned chunk) {
  napi_value argv[4];
  if (!NAPI_OK(napi_create_uint32(s->env, count, &argv[0])) || !NAPI_OK(napi_create_uint32(s->env, lost, &argv[1])) ||
      !NAPI_OK(napi_create_uint32(s->env, chunk, &argv[2])))
    return;
  /* Taken only once the call is sure to be made: a skipped batch leaves them for the next. */
  uint32_t rejected = __atomic_exchange_n(&s->rejected, 0, __ATOMIC_RELAXED);
  if (!NAPI_OK(napi_create_uint32(s->env, rejected, &argv[3]))) return;
  call_js(s, s->on_batch, 4, argv);
}

static void *reader(void *arg) {
  nl_socket *s = arg;
  for (;;) {
    pthread_mutex_lock(&s->mu);
    while (s->filled == s->chunks && !s->stopping) pthread_cond_wait(&s->cv, &s->mu);
    int stop = s->stopping;
    unsigned c = s->head;
    pthread_mutex_unlock(&s->mu);
    if (stop) break;
    struct pollfd fds[2] = {{.fd = s->fd, .events = POLLIN}, {.fd = s->wake_fd, .events = POLLIN}};
    if (poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      s->thread_errno = errno;
      uv_async_send(&s->async);
      break;
    }
    if (fds[1].revents) break;
    int n = receive_chunk(s, c);
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR || errno == ENOBUFS) continue;
      s->thread_errno = errno;
      uv_async_send(&s->async);
      break;
    }
    uint32_t lost = take_losses(s);
    pthread_mutex_lock(&s->mu);
    s->counts[c] = (unsigned)n;
    s->losses[c] = lost;
    s->head = (c + 1) % s->chunks;
    s->filled++;
    pthread_mutex_unlock(&s->mu);
    uv_async_send(&s->async);
  }
  return NULL;
}

/* The event loop side of the reader thread: hand every filled chunk to JS, in order. */
static void on_chunks(uv_async_t *handle) {
  nl_socket *s = handle->data;
  napi_handle_scope scope;
  if (!NAPI_OK(napi_open_handle_scope(s->env, &scope))) return; /* the next wake-up tries again */
  while (!s->closed) {
    pthread_mutex_lock(&s->mu);
    unsigned filled = s->filled, c = s->tail;
    pthread_mutex_unlock(&s->mu);
    if (filled == 0) break;
    deliver(s, s->counts[c], s->losses[c], c);
    pthread_mutex_lock(&s->mu);
    s->tail = (c + 1) % s->chunks;
    s->filled--;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
  }
  if (s->thread_errno && !s->closed) {
    int err = s->thread_errno;
    s->thread_errno = 0;
    report_error(s, "recvmmsg", err);
  }
  (void)napi_close_handle_scope(s->env, scope);
}

static void on_resume(uv_timer_t *timer) {
  nl_socket *s = timer->data;
  if (!s->closed && s->polling) uv_poll_start(&s->poll, UV_READABLE, on_readable);
}

static void on_readable(uv_poll_t *handle, int status, int events) {
  (void)events;
  nl_socket *s = handle->data;
  napi_handle_scope scope;
  if (!NAPI_OK(napi_open_handle_scope(s->env, &scope))) return; /* level-triggered: polled again */
  if (status < 0) {
    report_error(s, "poll", -status);
    (void)napi_close_handle_scope(s->env, scope);
    return;
  }
  int drained = 0, got = 0;
  for (int round = 0; round < ROUNDS_PER_WAKEUP && !s->closed; round++) {
    int n = receive_chunk(s, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      /* ENOBUFS only without NETLINK_NO_ENOBUFS: the drop counter below reports the loss. */
      if (errno != EAGAIN && errno != EWOULDBLOCK && errno != ENOBUFS) report_error(s, "recvmmsg", errno);
      n = 0;
    }
    uint32_t lost = take_losses(s);
    got += n;
    if (n > 0 || lost > 0 || __atomic_load_n(&s->rejected, __ATOMIC_RELAXED) > 0) deliver(s, (unsigned)n, lost, 0);
    if ((unsigned)n < s->slots) {
      drained = 1;
      break;
    }
  }
  if (drained && got > 0 && s->pause_ms > 0 && !s->closed) {
    uv_poll_stop(&s->poll);
    uv_timer_start(&s->resume, on_resume, s->pause_ms, 0);
  }
  (void)napi_close_handle_scope(s->env, scope);
}

/* Reads open()'s netns argument: a namespace's file descriptor, or null/undefined for our own
   namespace (-1). Returns 0 with a JS exception when it is neither. */
static int netns_arg(napi_env env, napi_value v, int32_t *fd) {
  napi_valuetype t;
  *fd = -1;
  if (napi_typeof(env, v, &t) != napi_ok) return napi_failed(env, "napi_typeof"), 0;
  if (t == napi_null || t == napi_undefined) return 1;
  if (t == napi_number) return int_arg(env, v, "netnsFd", 0, INT32_MAX, fd);
  return throw_type(env, "netnsFd must be a file descriptor or null"), 0;
}

/* Creates the JS-side areas and the async context of a new socket. NULL on success, else the
   failed call's name (the caller releases what was made). */
static const char *create_areas(napi_env env, nl_socket *s, size_t total, napi_value *data, napi_value *meta) {
  void *data_ptr, *meta_ptr;
  napi_value name;
  if (napi_create_arraybuffer(env, total * s->slot_size, &data_ptr, data) != napi_ok) return "napi_create_arraybuffer";
  if (napi_create_arraybuffer(env, total * META_FIELDS * sizeof(int32_t), &meta_ptr, meta) != napi_ok)
    return "napi_create_arraybuffer";
  s->data = data_ptr;
  s->meta = meta_ptr;
  if (napi_create_reference(env, *data, 1, &s->data_ref) != napi_ok) return "napi_create_reference";
  if (napi_create_reference(env, *meta, 1, &s->meta_ref) != napi_ok) return "napi_create_reference";
  if (napi_create_string_utf8(env, "netlink socket", NAPI_AUTO_LENGTH, &name) != napi_ok)
    return "napi_create_string_utf8";
  if (napi_async_init(env, NULL, name, &s->actx) != napi_ok) return "napi_async_init";
  return NULL;
}

/* Initialises the socket's libuv handles. On failure those already initialised are closed (their
   close callbacks release the fd and the struct) and the libuv error is returned. */
static int init_handles(napi_env env, nl_socket *s) {
  uv_loop_t *loop;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok) return UV_EINVAL;
  uv_handle_t *handles[] = {(uv_handle_t *)&s->poll, (uv_handle_t *)&s->resume, (uv_handle_t *)&s->async};
  s->poll.data = s;
  s->resume.data = s;
  s->async.data = s;
  int rc = uv_poll_init(loop, &s->poll, s->fd);
  int inited = 0;
  if (rc == 0) inited = 1, rc = uv_timer_init(loop, &s->resume);
  if (rc == 0) inited = 2, rc = uv_async_init(loop, &s->async, on_chunks);
  if (rc == 0) {
    s->open_handles = 3;
    return 0;
  }
  s->open_handles = inited;
  if (inited > 0) {
    s->closed = 1;
    s->finalized = 1; /* no external will own it: the last close callback frees it */
    for (int i = 0; i < inited; i++) uv_close(handles[i], on_closed);
  }
  return rc;
}

/* open(protocol, slots, slotSize, netnsFd | null, pauseMs, chunks = 0)
     -> [socket, data ArrayBuffer, meta ArrayBuffer, portId]
   netnsFd: open the socket inside the network namespace open as this descriptor (the caller's;
   left open). With chunks > 0 the areas hold that many chunks of `slots` datagrams, one after
   the other. */
static napi_value nl_open(napi_env env, napi_callback_info info) {
  napi_value argv[6];
  size_t argc = 6;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 5) {
    return throw_type(env, "open(protocol, slots, slotSize, netnsFd, pauseMs)");
  }
  int32_t protocol, slots, slot_size, pause_ms, netns_fd;
  if (!int_arg(env, argv[0], "protocol", 0, MAX_LINKS - 1, &protocol) ||
      !int_arg(env, argv[1], "slots", 1, MAX_SLOTS, &slots) ||
      !int_arg(env, argv[2], "slotSize", MIN_SLOT_SIZE, MAX_SLOT_SIZE, &slot_size) ||
      !netns_arg(env, argv[3], &netns_fd) || !int_arg(env, argv[4], "pauseMs", 0, MAX_PAUSE_MS, &pause_ms))
    return NULL;
  int32_t chunks = 0;
  if (argc >= 6 && !int_arg(env, argv[5], "chunks", 0, MAX_CHUNKS, &chunks)) return NULL;
  size_t total = (size_t)slots * (size_t)(chunks > 0 ? chunks : 1);
  if (total * (size_t)slot_size > MAX_AREA_BYTES) {
    char msg[160];
    snprintf(msg, sizeof msg, "slots * slotSize * max(chunks, 1) must be at most %zu MiB (got %zu bytes)",
             MAX_AREA_BYTES >> 20, total * (size_t)slot_size);
    NAPI_CALL(env, napi_throw_range_error(env, "ERR_OUT_OF_RANGE", msg));
    return NULL;
  }

  int err = 0;
  netns_task task = {protocol, NULL};
  int fd = netns_fd >= 0 ? in_netns(netns_fd, &task, &err)
                         : socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, protocol);
  if (fd < 0) return throw_errno(env, netns_fd >= 0 ? "setns/socket" : "socket", netns_fd >= 0 ? err : errno);
  struct sockaddr_nl addr = {.nl_family = AF_NETLINK};
  socklen_t alen = sizeof addr;
  if (bind(fd, (struct sockaddr *)&addr, sizeof addr) != 0 ||
      getsockname(fd, (struct sockaddr *)&addr, &alen) != 0) {
    err = errno;
    close(fd);
    return throw_errno(env, "bind", err);
  }

  nl_socket *s = calloc(1, sizeof *s);
  if (s) {
    s->msgs = calloc(total, sizeof *s->msgs);
    s->iov = calloc(total, sizeof *s->iov);
    s->ctrl = calloc(total, CTRL_SPACE);
    s->names = calloc(total, sizeof *s->names);
    s->counts = calloc((size_t)chunks + 1, sizeof *s->counts);
    s->losses = calloc((size_t)chunks + 1, sizeof *s->losses);
  }
  if (!s || !s->msgs || !s->iov || !s->ctrl || !s->names || !s->counts || !s->losses) {
    if (s) free_socket(s);
    close(fd);
    return throw_errno(env, "calloc", ENOMEM);
  }
  s->env = env;
  s->fd = fd;
  s->port_id = addr.nl_pid;
  s->slots = (unsigned)slots;
  s->slot_size = (size_t)slot_size;
  s->pause_ms = (unsigned)pause_ms;
  s->chunks = (unsigned)chunks;
  s->wake_fd = -1;

  napi_value data, meta;
  const char *failed = create_areas(env, s, total, &data, &meta);
  if (failed) {
    release_refs(s);
    free_socket(s);
    close(fd);
    return napi_failed(env, failed);
  }
  for (size_t i = 0; i < total; i++) {
    s->iov[i].iov_base = s->data + i * s->slot_size;
    s->iov[i].iov_len = s->slot_size;
    s->msgs[i].msg_hdr.msg_iov = &s->iov[i];
    s->msgs[i].msg_hdr.msg_iovlen = 1;
    s->msgs[i].msg_hdr.msg_control = s->ctrl + i * CTRL_SPACE;
    s->msgs[i].msg_hdr.msg_name = &s->names[i];
  }
  int rc = init_handles(env, s);
  if (rc != 0) {
    release_refs(s);
    if (s->open_handles == 0) {
      free_socket(s);
      close(fd);
    }
    return throw_errno(env, "uv_*_init", -rc);
  }
  /* Defaults cannot fail on Linux (no allocation); checked all the same. */
  if (pthread_mutex_init(&s->mu, NULL) != 0) {
    s->finalized = 1;
    begin_close(s);
    return throw_errno(env, "pthread_mutex_init", ENOMEM);
  }
  if (pthread_cond_init(&s->cv, NULL) != 0) {
    pthread_mutex_destroy(&s->mu);
    s->finalized = 1;
    begin_close(s);
    return throw_errno(env, "pthread_cond_init", ENOMEM);
  }
  s->sync_inited = 1;
  s->last_drops = read_drops(fd);

  napi_value ext, port, out;
  if (napi_create_external(env, s, finalize, NULL, &ext) != napi_ok) {
    s->finalized = 1; /* nothing in JS holds it: closing frees it */
    begin_close(s);
    return napi_failed(env, "napi_create_external");
  }
  /* From here the external owns the socket: its finalizer closes it if we fail. */
  if (napi_create_uint32(env, s->port_id, &port) != napi_ok) return napi_failed(env, "napi_create_uint32");
  if (napi_create_array_with_length(env, 4, &out) != napi_ok) return napi_failed(env, "napi_create_array");
  napi_value parts[] = {ext, data, meta, port};
  for (uint32_t i = 0; i < 4; i++) {
    if (napi_set_element(env, out, i, parts[i]) != napi_ok) return napi_failed(env, "napi_set_element");
  }
  return out;
}

static int is_buffer_size(int32_t level, int32_t name) {
  return level == SOL_SOCKET &&
         (name == SO_RCVBUF || name == SO_RCVBUFFORCE || name == SO_SNDBUF || name == SO_SNDBUFFORCE);
}

/* setInt(socket, level, name, value); a socket buffer size must be 1 KiB..1 GiB */
static napi_value nl_set_int(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  nl_socket *s = socket_arg(env, info, 4, argv);
  int32_t level, name, value;
  if (!s || !int_arg(env, argv[1], "level", 0, INT32_MAX, &level) ||
      !int_arg(env, argv[2], "name", 0, INT32_MAX, &name))
    return NULL;
  if (is_buffer_size(level, name) ? !int_arg(env, argv[3], "value (a socket buffer size in bytes)", MIN_SOCKET_BUFFER,
                                             MAX_SOCKET_BUFFER, &value)
                                  : !int_arg(env, argv[3], "value", INT32_MIN, INT32_MAX, &value))
    return NULL;
  int v = value;
  if (setsockopt(s->fd, level, name, &v, sizeof v) != 0) return throw_errno(env, "setsockopt", errno);
  return undefined(env);
}

/* getInt(socket, level, name) -> number */
static napi_value nl_get_int(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  nl_socket *s = socket_arg(env, info, 3, argv);
  int32_t level, name;
  if (!s || !int_arg(env, argv[1], "level", 0, INT32_MAX, &level) ||
      !int_arg(env, argv[2], "name", 0, INT32_MAX, &name))
    return NULL;
  int v = 0;
  socklen_t len = sizeof v;
  if (getsockopt(s->fd, level, name, &v, &len) != 0) return throw_errno(env, "getsockopt", errno);
  napi_value out;
  NAPI_CALL(env, napi_create_int32(env, v, &out));
  return out;
}

/* send(socket, Uint8Array) -> bytes sent, to the kernel (port 0) */
static napi_value nl_send(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  nl_socket *s = socket_arg(env, info, 2, argv);
  if (!s) return NULL;
  void *data;
  size_t len;
  if (napi_get_buffer_info(env, argv[1], &data, &len) != napi_ok) {
    return throw_type(env, "send needs a Buffer");
  }
  struct sockaddr_nl to = {.nl_family = AF_NETLINK};
  ssize_t n;
  do n = sendto(s->fd, data, len, 0, (struct sockaddr *)&to, sizeof to);
  while (n < 0 && errno == EINTR);
  if (n < 0) return throw_errno(env, "sendto", errno);
  napi_value out;
  NAPI_CALL(env, napi_create_int64(env, n, &out));
  return out;
}

/* start(socket, onBatch(count, lost, chunk), onError(errno, syscall)): poll the fd on the event loop,
   or start the reader thread when the socket has chunks */
/* Undoes a start that failed part-way: the callbacks' and the socket's own references (which
   would keep the socket alive, and its descriptor open, after JS let go of it) and the eventfd. */
static void undo_start(nl_socket *s) {
  napi_ref *refs[] = {&s->on_batch, &s->on_error, &s->self_ref};
  for (size_t i = 0; i < sizeof refs / sizeof refs[0]; i++) {
    if (*refs[i]) (void)napi_delete_reference(s->env, *refs[i]);
    *refs[i] = NULL;
  }
  if (s->wake_fd >= 0) close(s->wake_fd);
  s->wake_fd = -1;
}

static napi_value nl_start(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  nl_socket *s = socket_arg(env, info, 3, argv);
  if (!s) return NULL;
  if (s->polling) return undefined(env);
  napi_valuetype t1, t2;
  NAPI_CALL(env, napi_typeof(env, argv[1], &t1));
  NAPI_CALL(env, napi_typeof(env, argv[2], &t2));
  if (t1 != napi_function || t2 != napi_function) return throw_type(env, "onBatch and onError must be functions");
  if (napi_create_reference(env, argv[1], 1, &s->on_batch) != napi_ok ||
      napi_create_reference(env, argv[2], 1, &s->on_error) != napi_ok ||
      napi_create_reference(env, argv[0], 1, &s->self_ref) != napi_ok) {
    undo_start(s);
    return napi_failed(env, "napi_create_reference");
  }
  if (s->chunks > 0) {
    s->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (s->wake_fd < 0) {
      int err = errno;
      undo_start(s);
      return throw_errno(env, "eventfd", err);
    }
    int rc = pthread_create(&s->thread, NULL, reader, s);
    if (rc != 0) {
      undo_start(s);
      return throw_errno(env, "pthread_create", rc);
    }
  } else {
    int rc = uv_poll_start(&s->poll, UV_READABLE, on_readable);
    if (rc != 0) {
      undo_start(s);
      return throw_errno(env, "uv_poll_start", -rc);
    }
  }
  s->polling = 1;
  return undefined(env);
}

/* ref(socket, bool): whether a started socket keeps the process alive */
static napi_value nl_ref(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  nl_socket *s = socket_arg(env, info, 2, argv);
  if (!s) return NULL;
  bool on;
  if (napi_get_value_bool(env, argv[1], &on) != napi_ok) return throw_type(env, "ref(socket, on): on must be a boolean");
  uv_handle_t *handles[] = {(uv_handle_t *)&s->poll, (uv_handle_t *)&s->resume, (uv_handle_t *)&s->async};
  for (int i = 0; i < 3; i++) {
    if (on) uv_ref(handles[i]);
    else uv_unref(handles[i]);
  }
  return undefined(env);
}

static void on_closed(uv_handle_t *handle) {
  nl_socket *s = handle->data;
  if (--s->open_handles > 0) return;
  close(s->fd);
  s->handle_closed = 1;
  /* While JS still holds the external, the struct stays (marked closed) for it to point at. */
  if (s->finalized) free_socket(s);
}

static void stop_reader(nl_socket *s) {
  if (s->chunks == 0 || !s->polling) return;
  pthread_mutex_lock(&s->mu);
  s->stopping = 1;
  pthread_cond_broadcast(&s->cv);
  pthread_mutex_unlock(&s->mu);
  uint64_t one = 1;
  if (write(s->wake_fd, &one, sizeof one) < 0) { /* the thread also sees `stopping` */
  }
  pthread_join(s->thread, NULL);
  close(s->wake_fd);
  s->wake_fd = -1;
}

static void begin_close(nl_socket *s) {
  s->closed = 1;
  stop_reader(s);
  release_refs(s);
  uv_close((uv_handle_t *)&s->poll, on_closed);
  uv_close((uv_handle_t *)&s->resume, on_closed);
  uv_close((uv_handle_t *)&s->async, on_closed);
}

static void finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  nl_socket *s = data;
  s->finalized = 1;
  if (!s->closed) begin_close(s);
  else if (s->handle_closed) free_socket(s);
}

/* close(socket): idempotent; the fd is closed once libuv has let go of it. */
static napi_value nl_close(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  size_t argc = 1;
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  nl_socket *s = NULL;
  if (argc < 1 || napi_get_value_external(env, argv[0], (void **)&s) != napi_ok || s == NULL || s->closed)
    return undefined(env);
  begin_close(s);
  return undefined(env);
}

/* openFileIn(netnsFd, path) -> fd: opens `path` read-only from inside the namespace open as
 * `netnsFd`, by switching this thread there and back. /proc/sys/net/... and /proc/thread-self/net/...
 * resolve to the opener's namespace when opened and keep reading that namespace afterwards, so a
 * namespace's sysctls are read later from any thread without entering it again. */
static napi_value nl_open_file_in(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  size_t argc = 2;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2) {
    return throw_type(env, "openFileIn(netnsFd, path)");
  }
  int32_t nsfd;
  if (!int_arg(env, argv[0], "netnsFd", 0, INT32_MAX, &nsfd)) return NULL;
  char path[4096];
  size_t len = 0;
  if (napi_get_value_string_utf8(env, argv[1], path, sizeof path, &len) != napi_ok || len >= sizeof path - 1) {
    return throw_type(env, "path must be a string shorter than 4095 bytes");
  }
  netns_task task = {0, path};
  int err = 0;
  int fd = in_netns(nsfd, &task, &err);
  if (fd < 0) return throw_errno(env, "open in network namespace", err);
  napi_value out;
  if (napi_create_int32(env, fd, &out) != napi_ok) {
    close(fd);
    return napi_failed(env, "napi_create_int32");
  }
  return out;
}

NAPI_MODULE_INIT() {
  static const struct {
    const char *name;
    napi_callback fn;
  } fns[] = {
      {"open", nl_open}, {"setInt", nl_set_int}, {"getInt", nl_get_int}, {"send", nl_send},
      {"start", nl_start}, {"ref", nl_ref},       {"close", nl_close}, {"openFileIn", nl_open_file_in},
  };
  for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++) {
    napi_value fn;
    NAPI_CALL(env, napi_create_function(env, fns[i].name, NAPI_AUTO_LENGTH, fns[i].fn, NULL, &fn));
    NAPI_CALL(env, napi_set_named_property(env, exports, fns[i].name, fn));
  }
  return exports;
}
