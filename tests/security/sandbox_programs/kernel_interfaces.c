/* Call each kernel interface sandboxes deny and print one line per call (the paths
 * named do not exist, so nothing changes even where a call is let through):
 * "<name> allowed" or "<name> refused <errno name>". */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/personality.h>
#include <sys/syscall.h>
#include <unistd.h>

static void report(const char *name, long result) {
    if (result < 0)
        printf("%s refused %s\n", name, strerrorname_np(errno));
    else
        printf("%s allowed\n", name);
}

int main(void) {
    static char buf[256];
    setvbuf(stdout, NULL, _IONBF, 0);
    report("personality-query", syscall(SYS_personality, 0xffffffffUL));
    report("personality-linux", syscall(SYS_personality, PER_LINUX));
    report("personality-addr-no-randomize",
           syscall(SYS_personality, PER_LINUX | ADDR_NO_RANDOMIZE));
    report("personality-read-implies-exec",
           syscall(SYS_personality, PER_LINUX | READ_IMPLIES_EXEC));
    syscall(SYS_personality, PER_LINUX);
    report("modify_ldt", syscall(SYS_modify_ldt, 0, buf, sizeof buf));
    report("process_vm_readv", syscall(SYS_process_vm_readv, getpid(), NULL, 0, NULL, 0, 0));
    report("userfaultfd", syscall(SYS_userfaultfd, 0));
    report("bpf", syscall(SYS_bpf, 0, NULL, 0));
    report("perf_event_open", syscall(SYS_perf_event_open, NULL, 0, -1, -1, 0));
    report("keyctl", syscall(SYS_keyctl, 0, 0, 0, 0, 0));
    report("add_key", syscall(SYS_add_key, "user", "vstest", "x", 1, -2));
    report("request_key", syscall(SYS_request_key, "user", "vstest", NULL, -2));
    report("kexec_load", syscall(SYS_kexec_load, 0, 0, NULL, 0));
    report("kexec_file_load", syscall(SYS_kexec_file_load, -1, -1, 0, "", 0));
    report("mount", syscall(SYS_mount, "none", "/nonexistent-vstest", "tmpfs", 0, NULL));
    report("umount2", syscall(SYS_umount2, "/nonexistent-vstest", 0));
    report("fsopen", syscall(SYS_fsopen, "tmpfs", 0));
    report("open_tree", syscall(SYS_open_tree, -100, "/nonexistent-vstest", 0));
    report("io_uring_setup", syscall(SYS_io_uring_setup, 4, buf));
    report("io_uring_enter", syscall(SYS_io_uring_enter, -1, 0, 0, 0, NULL, 0));
    report("io_uring_register", syscall(SYS_io_uring_register, -1, 0, NULL, 0));
    return 0;
}
