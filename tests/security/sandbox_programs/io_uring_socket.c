/* Try to open an AF_VSOCK socket, a family the sandbox's socket() rule refuses,
 * through io_uring's IORING_OP_SOCKET, which never calls socket().
 * Prints "IO_URING_SOCKET <result>" and exits 0 when the socket was made. */
#include <errno.h>
#include <linux/io_uring.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef AF_VSOCK
#define AF_VSOCK 40
#endif

int main(void) {
    int direct = socket(AF_VSOCK, SOCK_STREAM, 0);
    printf("direct socket: %s\n", direct >= 0 ? "made" : strerror(errno));

    struct io_uring_params params;
    memset(&params, 0, sizeof params);
    int ring = (int)syscall(SYS_io_uring_setup, 4, &params);
    if (ring < 0) {
        printf("io_uring_setup refused: %s\n", strerror(errno));
        return 2;
    }
    size_t sq_size = params.sq_off.array + params.sq_entries * sizeof(unsigned);
    size_t cq_size = params.cq_off.cqes + params.cq_entries * sizeof(struct io_uring_cqe);
    if (cq_size > sq_size)
        sq_size = cq_size;
    char *sq = mmap(NULL, sq_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, ring,
                    IORING_OFF_SQ_RING);
    struct io_uring_sqe *sqes = mmap(NULL, params.sq_entries * sizeof(struct io_uring_sqe),
                                     PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, ring,
                                     IORING_OFF_SQES);
    if (sq == MAP_FAILED || sqes == MAP_FAILED) {
        printf("mmap failed: %s\n", strerror(errno));
        return 3;
    }
    char *cq = sq;  /* one mapping holds both rings (IORING_FEAT_SINGLE_MMAP) */
    unsigned *tail = (unsigned *)(sq + params.sq_off.tail);
    unsigned *mask = (unsigned *)(sq + params.sq_off.ring_mask);
    unsigned *array = (unsigned *)(sq + params.sq_off.array);
    unsigned index = *tail & *mask;
    struct io_uring_sqe *sqe = &sqes[index];
    memset(sqe, 0, sizeof *sqe);
    sqe->opcode = IORING_OP_SOCKET;
    sqe->fd = AF_VSOCK;
    sqe->off = SOCK_STREAM;
    sqe->len = 0;
    array[index] = index;
    __atomic_store_n(tail, *tail + 1, __ATOMIC_RELEASE);
    int done = (int)syscall(SYS_io_uring_enter, ring, 1, 1, IORING_ENTER_GETEVENTS, NULL, 0);
    if (done < 0) {
        printf("io_uring_enter refused: %s\n", strerror(errno));
        return 4;
    }
    unsigned head = *(unsigned *)(cq + params.cq_off.head);
    unsigned cmask = *(unsigned *)(cq + params.cq_off.ring_mask);
    struct io_uring_cqe *cqes = (struct io_uring_cqe *)(cq + params.cq_off.cqes);
    int res = cqes[head & cmask].res;
    if (res >= 0) {
        printf("IO_URING_SOCKET %d\n", res);
        return 0;
    }
    printf("io_uring socket refused: %s\n", strerror(-res));
    return 5;
}
