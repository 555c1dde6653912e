/*
 * Integer socket options for an already open socket, by file descriptor. The `netlink` package
 * exposes only SO_RCVBUF/SO_SNDBUF and group membership; the event socket also needs
 * NETLINK_NO_ENOBUFS (netlink 0.3.0 aborts the process when epoll reports the socket error an
 * overrun sets) and SO_RCVBUFFORCE (a buffer above net.core.rmem_max for CAP_NET_ADMIN).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <node_api.h>

static napi_value throw_errno(napi_env env, const char *syscall, int err) {
  char msg[160];
  snprintf(msg, sizeof msg, "%s: %s", syscall, strerror(err));
  napi_value error, code, errnum;
  napi_value text;
  napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &text);
  napi_create_error(env, NULL, text, &error);
  napi_create_int32(env, err, &errnum);
  napi_set_named_property(env, error, "errno", errnum);
  napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &code);
  napi_set_named_property(env, error, "syscall", code);
  napi_throw(env, error);
  return NULL;
}

static int int_args(napi_env env, napi_callback_info info, size_t want, int32_t *out) {
  napi_value argv[4];
  size_t argc = 4;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != want) {
    napi_throw_type_error(env, NULL, "wrong number of arguments");
    return 0;
  }
  for (size_t i = 0; i < want; i++) {
    if (napi_get_value_int32(env, argv[i], &out[i]) != napi_ok) {
      napi_throw_type_error(env, NULL, "arguments must be integers");
      return 0;
    }
  }
  return 1;
}

/* setsockoptInt(fd, level, optname, value) */
static napi_value set_int(napi_env env, napi_callback_info info) {
  int32_t a[4];
  if (!int_args(env, info, 4, a)) return NULL;
  int value = a[3];
  if (setsockopt(a[0], a[1], a[2], &value, sizeof value) != 0) return throw_errno(env, "setsockopt", errno);
  return NULL;
}

/* getsockoptInt(fd, level, optname) -> number */
static napi_value get_int(napi_env env, napi_callback_info info) {
  int32_t a[3];
  if (!int_args(env, info, 3, a)) return NULL;
  int value = 0;
  socklen_t len = sizeof value;
  if (getsockopt(a[0], a[1], a[2], &value, &len) != 0) return throw_errno(env, "getsockopt", errno);
  napi_value out;
  napi_create_int32(env, value, &out);
  return out;
}

NAPI_MODULE_INIT() {
  napi_value fn;
  napi_create_function(env, "setsockoptInt", NAPI_AUTO_LENGTH, set_int, NULL, &fn);
  napi_set_named_property(env, exports, "setsockoptInt", fn);
  napi_create_function(env, "getsockoptInt", NAPI_AUTO_LENGTH, get_int, NULL, &fn);
  napi_set_named_property(env, exports, "getsockoptInt", fn);
  return exports;
}
