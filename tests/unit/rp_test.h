/* rp_test.h - the tiny harness every CUnit test binary shares: register the
 * suite's tests, run them, print CUnit's summary and one machine-readable
 * line "RESULT passed=N failed=M" that tests/run.sh adds up. */
#ifndef RP_TEST_H
#define RP_TEST_H

#include <CUnit/Basic.h>
#include <stdio.h>

struct rp_test_case {
    const char *name;
    void (*fn)(void);
};

/* Run the NULL-terminated CASES as suite SUITE. Returns the exit status. */
static inline int rp_test_run(const char *suite, const struct rp_test_case *cases)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 2;
    CU_pSuite s = CU_add_suite(suite, NULL, NULL);
    if (!s)
        return 2;
    for (const struct rp_test_case *c = cases; c->name; c++)
        if (!CU_add_test(s, c->name, c->fn))
            return 2;
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned run = CU_get_number_of_tests_run();
    unsigned failed = CU_get_number_of_tests_failed();
    CU_cleanup_registry();
    printf("RESULT suite=%s passed=%u failed=%u\n", suite, run - failed, failed);
    return failed ? 1 : 0;
}

#endif
