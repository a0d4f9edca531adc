/* The request side of the wire protocol: lines out of a connection's input, and their parse.
 * Only the syntax is checked here; whether a request can be served is the handler's business. */
#include "shim.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

int request_next_line(struct buf *in, char line[REQUEST_LINE_MAX])
{
	char *nl = in->len ? memchr(in->p, '\n', in->len) : NULL;
	if (!nl)
		return 0;
	size_t n = nl - in->p;
	if (n >= REQUEST_LINE_MAX)
		return -1;
	memcpy(line, in->p, n);
	line[n] = 0;
	buf_consume(in, n + 1);
	return 1;
}

static int fail(struct request *r, const char *error, const char *word)
{
	r->error = error;
	r->error_word = word ? word : "";
	return -1;
}

static const char *exec_id_ok(const char *id)
{
	if (!*id || strlen(id) > 64)
		return NULL;
	for (const char *p = id; *p; p++)
		if (!isalnum((unsigned char)*p) && !strchr("_.-", *p))
			return NULL;
	return id;
}

/* kill SIGNAL [all] */
static int parse_kill(char *rest, struct request *r)
{
	char *save = NULL;
	char *sig = rest ? strtok_r(rest, " ", &save) : NULL;
	char *all = sig ? strtok_r(NULL, " ", &save) : NULL;
	r->signal = sig;
	r->signo = sig ? atoi(sig) : 0;
	r->all = all && strcmp(all, "all") == 0;
	if (r->signo <= 0 || r->signo >= 65)
		return fail(r, "kill: bad signal number", NULL);
	return 0;
}

/* resize COLUMNS ROWS [EXEC_ID] */
static int parse_resize(char *rest, struct request *r)
{
	char *save = NULL;
	char *w = rest ? strtok_r(rest, " ", &save) : NULL;
	char *h = w ? strtok_r(NULL, " ", &save) : NULL;
	r->exec_id = h ? strtok_r(NULL, " ", &save) : NULL;
	if (!w || !h || atoi(w) <= 0 || atoi(h) <= 0)
		return fail(r, "usage: resize COLUMNS ROWS [EXEC_ID]", NULL);
	r->cols = atoi(w);
	r->rows = atoi(h);
	return 0;
}

/* exec EXEC_ID OPTIONS PROCESS_JSON_PATH; OPTIONS is "-" or a comma list of tty, stdin, attach */
static int parse_exec(char *rest, struct request *r)
{
	char *save = NULL;
	char *id = rest ? strtok_r(rest, " ", &save) : NULL;
	char *options = id ? strtok_r(NULL, " ", &save) : NULL;
	r->process = options ? strtok_r(NULL, "", &save) : NULL;
	r->exec_id = id;
	if (!id || !r->process || !exec_id_ok(id))
		return fail(r, "usage: exec EXEC_ID OPTIONS PROCESS_JSON_PATH", NULL);
	for (char *o = strtok_r(options, ",", &save); o; o = strtok_r(NULL, ",", &save)) {
		if (strcmp(o, "tty") == 0)
			r->tty = 1;
		else if (strcmp(o, "stdin") == 0)
			r->want_stdin = 1;
		else if (strcmp(o, "attach") == 0)
			r->attach = 1;
		else if (strcmp(o, "-") != 0)
			return fail(r, "exec: unknown option ", o);
	}
	return 0;
}

static const struct { const char *name; enum request_kind kind; } kinds[] = {
	{"state", REQ_STATE}, {"start", REQ_START}, {"kill", REQ_KILL}, {"pause", REQ_PAUSE},
	{"resume", REQ_RESUME}, {"wait", REQ_WAIT}, {"wait-exec", REQ_WAIT_EXEC},
	{"resize", REQ_RESIZE}, {"attach", REQ_ATTACH}, {"exec", REQ_EXEC},
	{"delete", REQ_DELETE}, {"collect", REQ_COLLECT},
};

int request_parse(char *line, struct request *r)
{
	char *save = NULL;
	memset(r, 0, sizeof(*r));
	char *cmd = strtok_r(line, " ", &save);
	char *rest = cmd ? strtok_r(NULL, "", &save) : NULL;
	if (!cmd)
		return fail(r, "empty request", NULL);
	r->name = cmd;
	size_t k = 0;
	while (k < sizeof(kinds) / sizeof(kinds[0]) && strcmp(kinds[k].name, cmd) != 0)
		k++;
	if (k == sizeof(kinds) / sizeof(kinds[0]))
		return fail(r, "unknown request ", cmd);
	r->kind = kinds[k].kind;
	switch (r->kind) {
	case REQ_START:         /* start [by-client] */
		if (rest && strcmp(rest, "by-client") != 0)
			return fail(r, "start: unknown option ", rest);
		r->arg = rest;
		return 0;
	case REQ_KILL:
		return parse_kill(rest, r);
	case REQ_RESIZE:
		return parse_resize(rest, r);
	case REQ_EXEC:
		return parse_exec(rest, r);
	case REQ_WAIT_EXEC:
	case REQ_ATTACH:
		r->arg = rest;
		return 0;
	default:
		return 0;
	}
}
