/* main.c - rpcpoold's command line (docs/interface.md section 1). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rp_config.h"
#include "rp_log.h"
#include "rp_supervisor.h"

#define DEFAULT_CONFIG "/etc/rpcpool/rpcpool.conf"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: rpcpoold [-c FILE] [-t] [-w N] [-V] [-h]\n"
            "\n"
            "rpcpool: one local socket to a pool of Ethereum JSON-RPC endpoints.\n"
            "\n"
            "  -c FILE  configuration file (default %s)\n"
            "  -t       check the configuration, print 'FILE: ok' or 'FILE:LINE: reason', exit\n"
            "  -w N     number of workers, overriding server.workers\n"
            "  -V       print the version and exit\n"
            "  -h       this help\n"
            "\n"
            "Runs in the foreground and logs logfmt lines to stderr.\n"
            "Signals: SIGTERM/SIGINT stop gracefully, SIGHUP reloads the configuration.\n"
            "Exit status: 0 clean stop, 1 configuration error, 2 start-up failure.\n",
            DEFAULT_CONFIG);
}

int main(int argc, char **argv)
{
    const char *path = DEFAULT_CONFIG;
    int test_only = 0;
    long workers = 0;
    int opt;
    while ((opt = getopt(argc, argv, "c:tw:Vh")) != -1) {
        switch (opt) {
        case 'c':
            path = optarg;
            break;
        case 't':
            test_only = 1;
            break;
        case 'w': {
            char *end;
            workers = strtol(optarg, &end, 10);
            if (*end || workers < 1 || workers > 64) {
                fprintf(stderr, "rpcpoold: -w: expected a number of workers 1..64, got '%s'\n",
                        optarg);
                return 1;
            }
            break;
        }
        case 'V':
            printf("rpcpoold %s\n", RP_VERSION);
            return 0;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "rpcpoold: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return 1;
    }
    struct rp_config *cfg = calloc(1, sizeof *cfg);
    if (!cfg) {
        fprintf(stderr, "rpcpoold: out of memory\n");
        return 2;
    }
    char err[RP_ERR_MAX];
    if (rp_config_load(path, cfg, err, sizeof err) != 0) {
        if (test_only) {
            printf("%s\n", err);
        } else {
            rp_log_init("supervisor", RP_LOG_INFO);
            char q[RP_ERR_MAX + 8];
            rp_error("configuration error", "error=%s", rp_log_quote(q, sizeof q, err));
        }
        free(cfg);
        return 1;
    }
    if (test_only) {
        printf("%s: ok\n", path);
        rp_config_free(cfg);
        free(cfg);
        return 0;
    }
    rp_log_init("supervisor", cfg->log_level);
    return rp_supervisor_run(cfg, (int)workers); /* takes cfg */
}
