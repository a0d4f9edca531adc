/* The shim's json-file log writer on stdin, without a shim around it.
 *
 *   log_driver PATH MAX_SIZE MAX_FILE [FILE_SIZE_LIMIT] < records
 *
 * Opens PATH as the shim opens a container's log and appends each record as one line (the
 * record is the whole line). FILE_SIZE_LIMIT, if given, is RLIMIT_FSIZE: writes past it fail
 * (EFBIG), as on a full disk. Prints the number of lines dropped.
 */
#include "shim/shim.h"
#include "records.h"

#include <signal.h>
#include <sys/resource.h>

int main(int argc, char **argv)
{
	if (argc < 4) {
		fprintf(stderr, "usage: log_driver PATH MAX_SIZE MAX_FILE [FILE_SIZE_LIMIT]\n");
		return 2;
	}
	if (argc > 4) {
		struct rlimit rl = {.rlim_cur = atoll(argv[4]), .rlim_max = atoll(argv[4])};
		signal(SIGXFSZ, SIG_IGN);
		if (setrlimit(RLIMIT_FSIZE, &rl) < 0) {
			perror("setrlimit");
			return 1;
		}
	}
	static struct logfile log;
	log_open(&log, argv[1], atoll(argv[2]), atoi(argv[3]));
	size_t len, pos = 0, n;
	const unsigned char *rec;
	unsigned char *data = read_stdin(&len);
	while (next_record(data, len, &pos, &rec, &n))
		log_write(&log, (const char *)rec, n);
	printf("%llu\n", log.dropped);
	if (log.fd >= 0)
		close(log.fd);
	free(data);
	return 0;
}
