/* For each record on stdin, one line: the record as a JSON string ("..."), escaped by the
 * shim's json_escape. */
#include "shim/shim.h"
#include "records.h"

int main(void)
{
	size_t len, pos = 0, n;
	const unsigned char *rec;
	unsigned char *data = read_stdin(&len);
	while (next_record(data, len, &pos, &rec, &n)) {
		struct buf b = {0};
		buf_add(&b, "\"", 1);
		json_escape(&b, rec, n);
		buf_add(&b, "\"\n", 2);
		fwrite(b.p, 1, b.len, stdout);
		buf_free(&b);
	}
	free(data);
	return 0;
}
