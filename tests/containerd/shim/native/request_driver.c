/* The shim's request framing and parser on stdin, without a shim around them.
 *
 *   request_driver CHUNK < records
 *
 * Each record is what one client sends on its connection; it is fed in reads of CHUNK bytes
 * through request_next_line and request_parse, as the shim reads a connection. Output, one
 * line each (strings in hex, "-" for none):
 *   R KIND NAME ARG SIGNAL SIGNO ALL COLS ROWS EXEC_ID PROCESS TTY STDIN ATTACH   a request
 *   E MESSAGE                                                     a refused request
 *   T                        "request too long": the shim answers and closes the connection
 *   .                        the end of a connection
 */
#include "shim/shim.h"
#include "records.h"

static const char *const kinds[] = {
	"state", "start", "kill", "pause", "resume", "wait", "wait-exec", "resize", "attach",
	"exec", "delete", "collect",
};

static void hex(const char *s)
{
	if (!s) {
		fputs(" -", stdout);
		return;
	}
	fputc(' ', stdout);
	if (!*s)
		fputc('=', stdout);     /* the empty string */
	for (; *s; s++)
		printf("%02x", (unsigned char)*s);
}

static void print_request(const struct request *r)
{
	printf("R %s", kinds[r->kind]);
	hex(r->name);
	hex(r->arg);
	hex(r->signal);
	printf(" %d %d %d %d", r->signo, r->all, r->cols, r->rows);
	hex(r->exec_id);
	hex(r->process);
	printf(" %d %d %d\n", r->tty, r->want_stdin, r->attach);
}

/* The requests of one connection; 0 once it is refused as too long. */
static int serve(struct buf *in)
{
	char line[REQUEST_LINE_MAX];
	for (;;) {
		int got = request_next_line(in, line);
		if (got == 0)
			break;
		if (got < 0)
			return 0;
		struct request r;
		if (request_parse(line, &r) < 0) {
			struct buf msg = {0};
			buf_addf(&msg, "%s%s", r.error, r.error_word);
			fputs("E", stdout);
			hex(msg.p);
			fputc('\n', stdout);
			buf_free(&msg);
		} else {
			print_request(&r);
		}
	}
	return in->len <= REQUEST_PENDING_MAX;
}

int main(int argc, char **argv)
{
	size_t chunk = argc > 1 ? (size_t)atol(argv[1]) : 4096;
	size_t len, pos = 0, n;
	const unsigned char *rec;
	unsigned char *data = read_stdin(&len);
	if (chunk < 1)
		chunk = 1;
	while (next_record(data, len, &pos, &rec, &n)) {
		struct buf in = {0};
		for (size_t at = 0; at < n; at += chunk) {
			buf_add(&in, rec + at, n - at < chunk ? n - at : chunk);
			if (!serve(&in)) {
				puts("T");
				break;
			}
		}
		puts(".");
		buf_free(&in);
	}
	free(data);
	return 0;
}
