/*
 * A minimal test harness.  Each test is a function; CHECK records a failure
 * with file and line and the test goes on.  main() runs the tests given to
 * SG_TEST_MAIN and ends with the line "N passed, M failed", which
 * tests/run.sh adds up.
 */
#ifndef SG_TEST_H
#define SG_TEST_H

#include <stdio.h>
#include <string.h>

static int sg_test_failed_checks;
static int sg_test_skipped;

/*
 * The running test cannot run here (no PostgreSQL server, say): it says
 * why and counts neither as passed nor as failed; a CHECK that failed
 * before still makes it fail.  The test returns right after.
 */
#define SKIP(why) do {							\
	fprintf(stderr, "  skipped: %s\n", (why));			\
	sg_test_skipped = 1;						\
} while (0)

#define CHECK(cond) do {						\
	if (!(cond)) {							\
		fprintf(stderr, "  %s:%d: check failed: %s\n",		\
		    __FILE__, __LINE__, #cond);				\
		sg_test_failed_checks++;				\
	}								\
} while (0)

#define CHECK_EQ_INT(a, b) do {						\
	long long sg_a_ = (long long)(a), sg_b_ = (long long)(b);	\
	if (sg_a_ != sg_b_) {						\
		fprintf(stderr, "  %s:%d: %s == %lld, expected %s == %lld\n", \
		    __FILE__, __LINE__, #a, sg_a_, #b, sg_b_);		\
		sg_test_failed_checks++;				\
	}								\
} while (0)

#define CHECK_STR(a, b) do {						\
	const char *sg_a_ = (a), *sg_b_ = (b);				\
	if (sg_a_ == NULL || sg_b_ == NULL || strcmp(sg_a_, sg_b_) != 0) { \
		fprintf(stderr, "  %s:%d: %s == \"%s\", expected \"%s\"\n", \
		    __FILE__, __LINE__, #a, sg_a_ ? sg_a_ : "(null)",	\
		    sg_b_ ? sg_b_ : "(null)");				\
		sg_test_failed_checks++;				\
	}								\
} while (0)

struct sg_test {
	const char *name;
	void (*fn)(void);
};

#define T(fn) { #fn, fn }

/* Skipped tests are listed and counted on a line of their own, so that
 * the last line keeps its form. */
static int
sg_test_run(const char *suite, const struct sg_test *tests, size_t n)
{
	size_t i, passed = 0, failed = 0, skipped = 0;

	for (i = 0; i < n; i++) {
		int before = sg_test_failed_checks;
		sg_test_skipped = 0;
		tests[i].fn();
		if (sg_test_failed_checks != before) {
			failed++;
			printf("not ok - %s: %s\n", suite, tests[i].name);
		} else if (sg_test_skipped) {
			skipped++;
			printf("skip - %s: %s\n", suite, tests[i].name);
		} else {
			passed++;
			printf("ok - %s: %s\n", suite, tests[i].name);
		}
		fflush(stdout);
	}
	if (skipped > 0)
		printf("%zu skipped\n", skipped);
	printf("%zu passed, %zu failed\n", passed, failed);
	return failed == 0 ? 0 : 1;
}

#define SG_TEST_MAIN(suite, ...)					\
	int main(void) {						\
		static const struct sg_test tests_[] = { __VA_ARGS__ };	\
		return sg_test_run(suite, tests_,			\
		    sizeof(tests_) / sizeof(tests_[0]));		\
	}

#endif
