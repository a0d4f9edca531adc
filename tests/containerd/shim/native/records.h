/* Test drivers' input: stdin is a sequence of records, each a 4-byte big-endian length and
 * that many bytes. */
#ifndef SHIM_TEST_RECORDS_H
#define SHIM_TEST_RECORDS_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* All of stdin, in a heap buffer the caller frees. */
static unsigned char *read_stdin(size_t *len)
{
	size_t cap = 4096, n = 0;
	unsigned char *p = malloc(cap);
	for (;;) {
		if (n == cap) {
			cap *= 2;
			p = realloc(p, cap);
		}
		ssize_t r = read(0, p + n, cap - n);
		if (r < 0) {
			perror("read");
			exit(1);
		}
		if (r == 0)
			break;
		n += r;
	}
	*len = n;
	return p;
}

/* The next record at *pos of data; 0 at the end (a truncated record is an error). */
static int next_record(const unsigned char *data, size_t len, size_t *pos,
		       const unsigned char **rec, size_t *rec_len)
{
	if (*pos == len)
		return 0;
	if (len - *pos < 4) {
		fprintf(stderr, "truncated record header\n");
		exit(1);
	}
	const unsigned char *h = data + *pos;
	size_t n = ((size_t)h[0] << 24) | ((size_t)h[1] << 16) | ((size_t)h[2] << 8) | h[3];
	if (len - *pos - 4 < n) {
		fprintf(stderr, "truncated record\n");
		exit(1);
	}
	*rec = h + 4;
	*rec_len = n;
	*pos += 4 + n;
	return 1;
}

#endif
