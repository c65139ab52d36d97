/* cache_hit - the CPU cost of a response cache hit, with the daemon's own
 * code: what src/worker/cache_hook.c does for a cacheable call before any
 * byte goes upstream.
 *
 *   cache_hit [-n OPS] [-m MB] [--json]
 *
 * A MAP_SHARED | MAP_ANONYMOUS region laid out by rp_cache_region_init()
 * (MB MiB, default 64) holds entries for eth_chainId, eth_blockNumber and
 * eth_getBlockByNumber(N, false) (a 0.7 KB block object). Each op takes one
 * client call as it came (bytes), and does: rp_cachekey_classify (jsmn, the
 * canonical key), rp_cachekey_hash, rp_cache_get (index, seqlock copy,
 * checksum, key compare), and builds the client's answer with its own id
 * put back. Reported: CPU ns per hit (getrusage of the process over OPS ops,
 * per call shape). The socket read and write of the answer are not in it:
 * the whole-daemon figure (rpcbench --watch on rpcpoold) is in
 * bench/cache.sh.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <time.h>

#include "rp_buf.h"
#include "rp_cache.h"
#include "rp_cachekey.h"

static uint64_t cpu_ns(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (uint64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000ull +
           (uint64_t)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000ull;
}

struct shape {
    const char *name;
    const char *call;
    const char *method;
};

int main(int argc, char **argv)
{
    long ops = 1000000, mb = 64;
    int json = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-n") == 0 && i + 1 < argc)
            ops = strtol(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "-m") == 0 && i + 1 < argc)
            mb = strtol(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--json") == 0)
            json = 1;
        else {
            fprintf(stderr, "usage: cache_hit [-n OPS] [-m MB] [--json]\n");
            return 2;
        }
    }
    size_t bytes = (size_t)mb << 20;
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return 1;
    rp_cache_region_init(p, bytes, 1);
    struct rp_shm_cache *c = p;

    /* a block object answer of about 1.5 KB */
    static char block[2048];
    int bl = snprintf(block, sizeof block,
                      "{\"jsonrpc\":\"2.0\",\"id\":,\"result\":{\"hash\":\"0x%064d\","
                      "\"number\":\"0x1234\",\"logsBloom\":\"0x",
                      7);
    for (int i = 0; i < 512 && bl < (int)sizeof block - 64; i++)
        block[bl++] = '0';
    bl += snprintf(block + bl, sizeof block - (size_t)bl, "\",\"transactions\":[]}}");

    static const struct shape shapes[] = {
        {"eth_chainId", "{\"jsonrpc\":\"2.0\",\"id\":17,\"method\":\"eth_chainId\",\"params\":[]}",
         "eth_chainId"},
        {"eth_blockNumber",
         "{\"jsonrpc\":\"2.0\",\"id\":\"a-client-id\",\"method\":\"eth_blockNumber\",\"params\":[]"
         "}",
         "eth_blockNumber"},
        {"eth_getBlockByNumber",
         "{\"jsonrpc\":\"2.0\",\"id\":42,\"method\":\"eth_getBlockByNumber\",\"params\":["
         "\"0x1234\","
         "false]}",
         "eth_getBlockByNumber"},
    };
    const char *values[] = {"{\"jsonrpc\":\"2.0\",\"id\":,\"result\":\"0x1\"}",
                            "{\"jsonrpc\":\"2.0\",\"id\":,\"result\":\"0x1234\"}", block};
    char key[16384];
    struct rp_buf val = RP_BUF_INIT, out = RP_BUF_INIT;
    if (json)
        printf("[");
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        const struct shape *sh = &shapes[s];
        struct rp_ck ck;
        size_t kl = rp_cachekey_classify(sh->call, strlen(sh->call), sh->method, strlen(sh->method),
                                         &ck, key, sizeof key);
        struct rp_cache_meta m = {.kind = RP_CENT_STATIC, .id_off = 22};
        rp_cache_put(c, key, kl, rp_cachekey_hash(key, kl, 0), values[s], strlen(values[s]), &m, 1,
                     1, 0);
        const char *id = strstr(sh->call, "\"id\":") + 5;
        size_t idl = (size_t)(strchr(id, ',') - id);
        long hits = 0;
        uint64_t t0 = cpu_ns();
        for (long i = 0; i < ops; i++) {
            struct rp_ck k2;
            size_t n = rp_cachekey_classify(sh->call, strlen(sh->call), sh->method,
                                            strlen(sh->method), &k2, key, sizeof key);
            uint64_t h = rp_cachekey_hash(key, n, 0);
            struct rp_cache_meta got;
            if (!rp_cache_get(c, key, n, h, &val, &got))
                continue;
            rp_buf_reset(&out);
            rp_buf_append(&out, val.data, got.id_off);
            rp_buf_append(&out, id, idl);
            rp_buf_append(&out, val.data + got.id_off, val.len - got.id_off);
            hits++;
        }
        uint64_t dt = cpu_ns() - t0;
        double ns = hits ? (double)dt / (double)hits : 0.0;
        if (json)
            printf("%s{\"shape\":\"%s\",\"ops\":%ld,\"hits\":%ld,\"answer_bytes\":%zu,\"cpu_ns_per_"
                   "hit\":%.1f}",
                   s ? "," : "", sh->name, ops, hits, out.len, ns);
        else
            printf("cache hit %-22s %8.1f ns CPU per hit (%ld hits, answer %zu bytes)\n", sh->name,
                   ns, hits, out.len);
    }
    if (json)
        printf("]\n");
    rp_buf_free(&val);
    rp_buf_free(&out);
    munmap(p, bytes);
    return 0;
}
