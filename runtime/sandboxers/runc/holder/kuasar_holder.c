/*
 * kuasar-holder: the per-pod namespace holder of the runc sandboxer.
 *
 * One tiny static process per pod (no shim, no pause container): it owns the pod's
 * IPC and UTS namespaces, sits in the CNI network namespace, and (for pods that share
 * a PID namespace) keeps a child that is PID 1 of the pod's PID namespace. It is also
 * the pod's child subreaper: the sandboxer asks it to spawn `crun create` / `crun exec`
 * (SPAWN over a SOCK_SEQPACKET socket, stdio passed with SCM_RIGHTS), so container
 * processes are orphaned to the holder, whose exit statuses it reports live (EXIT) and
 * appends to a journal, so nothing is lost while the sandboxer is down.
 *
 * Made by double fork: the sandboxer spawns it, it sets up namespaces, forks, and the
 * first process exits, so the holder outlives any sandboxer restart.
 *
 * It also owns the pod's Task API socket (--task-socket): it accepts containerd's
 * connections and hands each to the sandboxer (TASKCONN, the fd over SCM_RIGHTS) while
 * keeping a copy. The sandboxer serves the Task API on them; if it crashes, containerd's
 * connections stay open (the holder's copies), and a restarted sandboxer is handed them
 * again, so containerd never sees its tasks' "shim" go away. The holder never reads them:
 * it only watches for the peer hanging up (POLLRDHUP) to drop its copy.
 *
 * Wire format (all little-endian u32 words; one message per packet):
 *   SPAWN    {1, req_id, argc, envc, fdmask} then argc+envc NUL-terminated strings;
 *            SCM_RIGHTS carries the stdio fds whose bit (1<<n for fd n) is in fdmask,
 *            in order; the others become /dev/null.
 *   SPAWNED  {2, req_id, pid or -errno, 0}
 *   EXIT     {3, pid, wait status, 0}
 *   TASKCONN {4, connection id, 0, 0} with one fd
 *   READY line on --ready-fd: "READY <holder pid> <sandbox pid>\n"
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MSG_SPAWN 1
#define MSG_SPAWNED 2
#define MSG_EXIT 3
#define MAX_PACKET 65536
#define MSG_TASKCONN 4
#define MAX_ARGS 256
#define MAX_TASK_CONNS 256

static struct {
  const char* netns;
  const char* hostname;
  const char* socket_path;
  const char* journal_path;
  const char* task_socket;
  const char* pid_file;
  int new_ipc, new_uts, new_pid, ready_fd;
  const char* sysctls[64];
  int n_sysctls;
} opt = {.ready_fd = -1};

static int journal_fd = -1;
static int conn_fd = -1;
static pid_t pid1 = 0; /* PID 1 of the pod PID namespace, when there is one */
static struct {
  int fd;
  uint32_t id;
} task_conns[MAX_TASK_CONNS];
static int n_task_conns = 0;
static uint32_t next_task_conn = 1;

static void die(const char* what) {
  fprintf(stderr, "kuasar-holder: %s: %s\n", what, strerror(errno));
  _exit(1);
}

static void usage(void) {
  fprintf(stderr,
          "usage: kuasar-holder --socket PATH --journal PATH --ready-fd N [--netns PATH]\n"
          "                     [--new-ipc] [--new-uts] [--hostname NAME] [--new-pid]\n"
          "                     [--task-socket PATH] [--sysctl KEY=VALUE]... [--pid-file PATH]\n");
  _exit(2);
}

static void parse_args(int argc, char** argv) {
  for (int i = 1; i < argc; i++) {
    const char* a = argv[i];
    const char* v = (i + 1 < argc) ? argv[i + 1] : NULL;
    if (!strcmp(a, "--netns") && v) opt.netns = v, i++;
    else if (!strcmp(a, "--hostname") && v) opt.hostname = v, i++;
    else if (!strcmp(a, "--socket") && v) opt.socket_path = v, i++;
    else if (!strcmp(a, "--journal") && v) opt.journal_path = v, i++;
    else if (!strcmp(a, "--task-socket") && v) opt.task_socket = v, i++;
    else if (!strcmp(a, "--pid-file") && v) opt.pid_file = v, i++;
    else if (!strcmp(a, "--ready-fd") && v) opt.ready_fd = atoi(v), i++;
    else if (!strcmp(a, "--sysctl") && v && opt.n_sysctls < 64) opt.sysctls[opt.n_sysctls++] = v, i++;
    else if (!strcmp(a, "--new-ipc")) opt.new_ipc = 1;
    else if (!strcmp(a, "--new-uts")) opt.new_uts = 1;
    else if (!strcmp(a, "--new-pid")) opt.new_pid = 1;
    else usage();
  }
  if (!opt.socket_path || !opt.journal_path || opt.ready_fd < 0) usage();
}

/* PID 1 of the pod's PID namespace. Orphans inside the namespace (container inits and
 * exec'd processes of a pod that shares its PID namespace) are reaped here, not by the
 * holder, so each exit is passed up to the holder before reaping: the wait status as
 * data and the pid as SCM_CREDENTIALS, which the kernel translates from this namespace's
 * numbering to the host's. Leaves on SIGTERM/SIGINT. */
static void pid1_loop(int up) {
  sigset_t all;
  sigfillset(&all);
  sigprocmask(SIG_BLOCK, &all, NULL);
  prctl(PR_SET_NAME, "kuasar-pod-init");
  for (;;) {
    siginfo_t info;
    int sig = sigwaitinfo(&all, &info);
    if (sig == SIGTERM || sig == SIGINT) _exit(0);
    if (sig != SIGCHLD) continue;
    for (;;) {
      siginfo_t c;
      memset(&c, 0, sizeof c);
      /* Peek first: the pid must still exist for the kernel to translate it. */
      if (waitid(P_ALL, 0, &c, WEXITED | WNOHANG | WNOWAIT) != 0 || c.si_pid == 0) break;
      int status = c.si_code == CLD_EXITED ? (c.si_status & 0xff) << 8
                                           : (c.si_status & 0x7f) | (c.si_code == CLD_DUMPED ? 0x80 : 0);
      struct ucred cred = {.pid = c.si_pid, .uid = 0, .gid = 0};
      char cbuf[CMSG_SPACE(sizeof cred)];
      struct iovec iov = {&status, sizeof status};
      struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
                           .msg_controllen = sizeof cbuf};
      struct cmsghdr* cm = CMSG_FIRSTHDR(&msg);
      cm->cmsg_level = SOL_SOCKET;
      cm->cmsg_type = SCM_CREDENTIALS;
      cm->cmsg_len = CMSG_LEN(sizeof cred);
      memcpy(CMSG_DATA(cm), &cred, sizeof cred);
      if (sendmsg(up, &msg, MSG_NOSIGNAL) < 0) { /* holder gone: just reap */ }
      waitpid(c.si_pid, NULL, 0);
    }
  }
}

static void send_words(uint32_t a, uint32_t b, uint32_t c, uint32_t d) {
  uint32_t w[4] = {a, b, c, d};
  if (conn_fd >= 0 && send(conn_fd, w, sizeof w, MSG_NOSIGNAL) < 0) {
    close(conn_fd);
    conn_fd = -1;
  }
}

static void send_task_conn(int fd, uint32_t id) {
  if (conn_fd < 0) return;
  uint32_t w[4] = {MSG_TASKCONN, id, 0, 0};
  char cbuf[CMSG_SPACE(sizeof(int))];
  struct iovec iov = {w, sizeof w};
  struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
                       .msg_controllen = sizeof cbuf};
  struct cmsghdr* c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  memcpy(CMSG_DATA(c), &fd, sizeof fd);
  if (sendmsg(conn_fd, &msg, MSG_NOSIGNAL) < 0) {
    close(conn_fd);
    conn_fd = -1;
  }
}

static void accept_task_conn(int lfd) {
  int c = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
  if (c < 0) return;
  if (n_task_conns == MAX_TASK_CONNS) {
    close(c);
    return;
  }
  task_conns[n_task_conns].fd = c;
  task_conns[n_task_conns].id = next_task_conn++;
  send_task_conn(c, task_conns[n_task_conns].id);
  n_task_conns++;
}

static void drop_task_conn(int i) {
  close(task_conns[i].fd);
  task_conns[i] = task_conns[--n_task_conns];
}

static int listen_on(const char* path, int type, mode_t mask) {
  struct sockaddr_un addr = {.sun_family = AF_UNIX};
  if (strlen(path) >= sizeof addr.sun_path) {
    errno = ENAMETOOLONG;
    die("socket path");
  }
  strcpy(addr.sun_path, path);
  int fd = socket(AF_UNIX, type | SOCK_CLOEXEC, 0);
  if (fd < 0) die("socket");
  unlink(path);
  mode_t old = umask(mask);
  if (bind(fd, (struct sockaddr*)&addr, sizeof addr) != 0) die("bind");
  umask(old);
  if (listen(fd, 64) != 0) die("listen");
  return fd;
}

static void journal_exit(pid_t pid, int status) {
  char line[96];
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  int n = snprintf(line, sizeof line, "%d %d %lld\n", (int)pid, status,
                   (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec);
  if (write(journal_fd, line, (size_t)n) != n) fprintf(stderr, "kuasar-holder: journal write\n");
  fdatasync(journal_fd);
}

/* An exit reaped by the pod's PID 1, with the pid already in host numbering. */
static void handle_pod_exit(int fd) {
  int status = 0;
  char cbuf[CMSG_SPACE(sizeof(struct ucred))];
  struct iovec iov = {&status, sizeof status};
  struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
                       .msg_controllen = sizeof cbuf};
  if (recvmsg(fd, &msg, MSG_DONTWAIT) != (ssize_t)sizeof status) return;
  for (struct cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS) {
      struct ucred cred;
      memcpy(&cred, CMSG_DATA(c), sizeof cred);
      if (cred.pid > 0) {
        journal_exit(cred.pid, status);
        send_words(MSG_EXIT, (uint32_t)cred.pid, (uint32_t)status, 0);
      }
    }
  }
}

/* Reaps every exited child; returns 1 when the pod's PID 1 died (the pod is over). */
static int reap(void) {
  int status;
  pid_t pid;
  int pod_over = 0;
  while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
    if (pid == pid1) {
      pod_over = 1;
      continue;
    }
    journal_exit(pid, status);
    send_words(MSG_EXIT, (uint32_t)pid, (uint32_t)status, 0);
  }
  return pod_over;
}

static void handle_spawn(const char* buf, ssize_t len, int received[3], int nreceived) {
  uint32_t hdr[5];
  if (len < (ssize_t)sizeof hdr) return;
  memcpy(hdr, buf, sizeof hdr);
  uint32_t req = hdr[1], argc = hdr[2], envc = hdr[3], mask = hdr[4];
  int fds[3] = {-1, -1, -1};
  for (int i = 0, next = 0; i < 3; i++) {
    if ((mask & (1u << i)) && next < nreceived) fds[i] = received[next++];
  }
  char* argv[MAX_ARGS + 1];
  char* envp[MAX_ARGS + 1];
  if (argc == 0 || argc > MAX_ARGS || envc > MAX_ARGS) {
    send_words(MSG_SPAWNED, req, (uint32_t)-EINVAL, 0);
    return;
  }
  /* Strings are copied into a buffer of our own so they outlive the packet. */
  static char strings[MAX_PACKET];
  size_t n = (size_t)len - sizeof hdr;
  memcpy(strings, buf + sizeof hdr, n);
  size_t off = 0;
  for (uint32_t i = 0; i < argc + envc; i++) {
    if (off >= n) {
      send_words(MSG_SPAWNED, req, (uint32_t)-EINVAL, 0);
      return;
    }
    char* s = strings + off;
    size_t l = strnlen(s, n - off);
    if (l == n - off) {
      send_words(MSG_SPAWNED, req, (uint32_t)-EINVAL, 0);
      return;
    }
    if (i < argc) argv[i] = s; else envp[i - argc] = s;
    off += l + 1;
  }
  argv[argc] = NULL;
  envp[envc] = NULL;

  int errpipe[2];
  if (pipe2(errpipe, O_CLOEXEC) != 0) {
    send_words(MSG_SPAWNED, req, (uint32_t)-errno, 0);
    return;
  }
  pid_t pid = fork();
  if (pid == 0) {
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    for (int i = 0; i < 3; i++) {
      if (fds[i] >= 0) {
        if (dup2(fds[i], i) < 0) goto fail;
      } else {
        int nul = open("/dev/null", i == 0 ? O_RDONLY : O_WRONLY);
        if (nul < 0 || dup2(nul, i) < 0) goto fail;
      }
    }
    execve(argv[0], argv, envp);
  fail:;
    int e = errno;
    if (write(errpipe[1], &e, sizeof e) < 0) {
    }
    _exit(127);
  }
  close(errpipe[1]);
  int child_errno = 0;
  if (pid < 0) {
    child_errno = errno;
  } else if (read(errpipe[0], &child_errno, sizeof child_errno) != sizeof child_errno) {
    child_errno = 0; /* exec succeeded: the pipe closed on exec */
  }
  close(errpipe[0]);
  send_words(MSG_SPAWNED, req, child_errno ? (uint32_t)-child_errno : (uint32_t)pid, 0);
}

static void handle_conn(void) {
  static char buf[MAX_PACKET];
  char cbuf[CMSG_SPACE(sizeof(int) * 3)];
  struct iovec iov = {buf, sizeof buf};
  struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
                       .msg_controllen = sizeof cbuf};
  ssize_t len = recvmsg(conn_fd, &msg, MSG_CMSG_CLOEXEC);
  if (len <= 0) {
    close(conn_fd);
    conn_fd = -1;
    return;
  }
  int fds[3] = {-1, -1, -1};
  int nfds = 0;
  for (struct cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
      size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      for (size_t i = 0; i < n; i++) {
        int fd;
        memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
        if (nfds < 3) fds[nfds++] = fd; else close(fd);
      }
    }
  }
  uint32_t type = 0;
  if (len >= 4) memcpy(&type, buf, 4);
  if (type == MSG_SPAWN && !(msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC))) {
    handle_spawn(buf, len, fds, nfds);
  }
  for (int i = 0; i < nfds; i++) close(fds[i]);
}

/* Writes KEY=VALUE to /proc/sys/KEY (dots as slashes) in our own namespaces. The
 * sandboxer allows only namespaced keys made of [a-z0-9_.-]; checked again here. */
static void apply_sysctl(const char* kv) {
  const char* eq = strchr(kv, '=');
  if (!eq || eq == kv || eq - kv > 200) {
    errno = EINVAL;
    die("sysctl");
  }
  char path[256] = "/proc/sys/";
  size_t n = strlen(path);
  for (const char* p = kv; p < eq; p++) {
    char c = *p;
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.')) {
      errno = EINVAL;
      die("sysctl key");
    }
    path[n++] = c == '.' ? '/' : c;
  }
  path[n] = 0;
  if (strstr(path, "//") || strstr(path, "/../")) {
    errno = EINVAL;
    die("sysctl key");
  }
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) {
    fprintf(stderr, "kuasar-holder: sysctl %s: ", path);
    die("open");
  }
  size_t len = strlen(eq + 1);
  if (write(fd, eq + 1, len) != (ssize_t)len) die("write sysctl");
  close(fd);
}

int main(int argc, char** argv) {
  parse_args(argc, argv);
  if (setsid() < 0) die("setsid");
  if (opt.netns) {
    int fd = open(opt.netns, O_RDONLY | O_CLOEXEC);
    if (fd < 0) die("open netns");
    if (setns(fd, CLONE_NEWNET) != 0) die("setns net");
    close(fd);
  }
  int flags = (opt.new_ipc ? CLONE_NEWIPC : 0) | (opt.new_uts ? CLONE_NEWUTS : 0);
  if (flags && unshare(flags) != 0) die("unshare");
  if (opt.new_uts && opt.hostname && sethostname(opt.hostname, strlen(opt.hostname)) != 0) {
    die("sethostname");
  }
  for (int i = 0; i < opt.n_sysctls; i++) apply_sysctl(opt.sysctls[i]);
  /* Second fork: the spawning sandboxer reaps the first process right away. */
  pid_t child = fork();
  if (child < 0) die("fork");
  if (child > 0) _exit(0);

  prctl(PR_SET_CHILD_SUBREAPER, 1);
  prctl(PR_SET_NAME, "kuasar-holder");
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGCHLD);
  sigaddset(&mask, SIGTERM);
  sigaddset(&mask, SIGINT);
  sigaddset(&mask, SIGHUP);
  sigprocmask(SIG_BLOCK, &mask, NULL);
  signal(SIGPIPE, SIG_IGN);

  pid_t sandbox_pid = getpid();
  journal_fd = open(opt.journal_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
  if (journal_fd < 0) die("open journal");
  int pod_up = -1; /* exits from the pod's PID 1 */
  if (opt.new_pid) {
    int sp[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) != 0) die("socketpair");
    int one = 1;
    if (setsockopt(sp[0], SOL_SOCKET, SO_PASSCRED, &one, sizeof one) != 0) die("SO_PASSCRED");
    pod_up = sp[0];
    /* clone(CLONE_NEWPID) puts only this child in the new namespace; unshare would put
     * every later child there too, and the runtimes we spawn must see host pids. */
    pid1 = (pid_t)syscall(SYS_clone, CLONE_NEWPID | SIGCHLD, NULL, NULL, NULL, NULL);
    if (pid1 < 0) die("fork pid1");
    if (pid1 == 0) {
      close(sp[0]);
      pid1_loop(sp[1]);
    }
    close(sp[1]);
    sandbox_pid = pid1;
  }
  int sfd = signalfd(-1, &mask, SFD_CLOEXEC);
  if (sfd < 0) die("signalfd");
  int lfd = listen_on(opt.socket_path, SOCK_SEQPACKET, 0177); /* 0600: root only */
  int tfd = opt.task_socket ? listen_on(opt.task_socket, SOCK_STREAM, 0177) : -1;

  int devnull = open("/dev/null", O_RDWR);
  if (devnull >= 0) {
    dup2(devnull, 0);
    dup2(devnull, 1);
    if (devnull > 2) close(devnull);
  }
  /* The pid file comes first: a sandboxer that dies before it records our pid finds us
   * here on recovery (written to a temp name and renamed: never torn). */
  if (opt.pid_file) {
    char tmp[4200], line[32];
    snprintf(tmp, sizeof tmp, "%s.tmp", opt.pid_file);
    int pf = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    int ln = snprintf(line, sizeof line, "%d\n", (int)getpid());
    if (pf < 0 || write(pf, line, (size_t)ln) != ln || fsync(pf) != 0 || close(pf) != 0 ||
        rename(tmp, opt.pid_file) != 0) {
      die("pid file");
    }
  }
  char ready[64];
  int n = snprintf(ready, sizeof ready, "READY %d %d\n", (int)getpid(), (int)sandbox_pid);
  if (write(opt.ready_fd, ready, (size_t)n) != n) die("ready");
  close(opt.ready_fd);

  for (;;) {
    struct pollfd p[5 + MAX_TASK_CONNS] = {{sfd, POLLIN, 0}, {lfd, POLLIN, 0},
                                           {pod_up, POLLIN, 0}, {conn_fd, POLLIN, 0},
                                           {tfd, POLLIN, 0}};
    int base = 5, n = n_task_conns;
    for (int i = 0; i < n; i++) p[base + i] = (struct pollfd){task_conns[i].fd, POLLRDHUP, 0};
    if (poll(p, (nfds_t)(base + n), -1) < 0) {
      if (errno == EINTR) continue;
      die("poll");
    }
    if (p[0].revents & POLLIN) {
      struct signalfd_siginfo si;
      while (read(sfd, &si, sizeof si) == sizeof si) {
        if (si.ssi_signo == SIGCHLD) {
          if (reap()) _exit(0); /* the pod's PID 1 is gone: so is the pod */
        } else if (si.ssi_signo != SIGHUP) {
          if (pid1 > 0) kill(pid1, SIGKILL);
          _exit(0);
        }
        break;
      }
    }
    if (p[1].revents & POLLIN) {
      int c = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
      if (c >= 0) {
        if (conn_fd >= 0) close(conn_fd); /* a restarted sandboxer replaces the old one */
        conn_fd = c;
        for (int i = 0; i < n_task_conns; i++) send_task_conn(task_conns[i].fd, task_conns[i].id);
      }
    }
    if (pod_up >= 0 && (p[2].revents & POLLIN)) handle_pod_exit(pod_up);
    if (conn_fd >= 0 && (p[3].revents & (POLLIN | POLLHUP | POLLERR))) handle_conn();
    /* containerd hung up: drop our copy (backwards, as dropping moves the last entry). */
    for (int i = n - 1; i >= 0; i--) {
      if (p[base + i].revents & (POLLRDHUP | POLLHUP | POLLERR)) drop_task_conn(i);
    }
    if (tfd >= 0 && (p[4].revents & POLLIN)) accept_task_conn(tfd);
  }
}
