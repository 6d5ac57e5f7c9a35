/* Write into another process's memory with process_vm_writev: the parent
 * forks a child that waits on a variable, then rewrites that variable from
 * outside.  Prints "WROTE_OTHER_PROCESS" and exits 0 when the write landed. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile char target[16] = "untouched";

int main(void) {
    int ready[2];
    if (pipe(ready) != 0)
        return 3;
    pid_t child = fork();
    if (child == 0) {
        for (int i = 0; i < 500 && strcmp((const char *)target, "rewritten") != 0; i++)
            usleep(10000);
        _exit(strcmp((const char *)target, "rewritten") == 0 ? 0 : 1);
    }
    char value[16] = "rewritten";
    struct iovec local = {value, sizeof value};
    struct iovec remote = {(void *)target, sizeof value};
    ssize_t n = process_vm_writev(child, &local, 1, &remote, 1, 0);
    if (n < 0) {
        printf("process_vm_writev refused: %s\n", strerror(errno));
        kill(child, SIGKILL);
        waitpid(child, NULL, 0);
        return 2;
    }
    int status = 0;
    waitpid(child, &status, 0);
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        printf("WROTE_OTHER_PROCESS %zd\n", n);
        return 0;
    }
    printf("write did not land\n");
    return 4;
}
