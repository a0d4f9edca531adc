/* JSON string escaping for the log, the exit records, the state and the events. */
#include "shim.h"

/* The length of the valid UTF-8 sequence at s[0..n), or 0 if it is not one. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
	unsigned char c = s[0], lo = 0x80, hi = 0xbf;
	size_t len = 0;
	if (c >= 0xc2 && c <= 0xdf) {
		len = 2;
	} else if (c >= 0xe0 && c <= 0xef) {
		len = 3;
		if (c == 0xe0)
			lo = 0xa0;      /* no overlong forms */
		if (c == 0xed)
			hi = 0x9f;      /* no surrogates */
	} else if (c >= 0xf0 && c <= 0xf4) {
		len = 4;
		if (c == 0xf0)
			lo = 0x90;      /* no overlong forms */
		if (c == 0xf4)
			hi = 0x8f;      /* nothing above U+10FFFF */
	}
	if (!len || len > n || s[1] < lo || s[1] > hi)
		return 0;
	for (size_t k = 2; k < len; k++)
		if ((s[k] & 0xc0) != 0x80)
			return 0;
	return len;
}

static void escape_ascii(struct buf *b, unsigned char c)
{
	if (c == '"' || c == '\\') {
		char e[2] = {'\\', (char)c};
		buf_add(b, e, 2);
	} else if (c == '\n') {
		buf_add(b, "\\n", 2);
	} else if (c == '\r') {
		buf_add(b, "\\r", 2);
	} else if (c == '\t') {
		buf_add(b, "\\t", 2);
	} else if (c < 0x20 || c == 0x7f) {
		buf_addf(b, "\\u%04x", c);
	} else {
		buf_add(b, &c, 1);
	}
}

void json_escape(struct buf *b, const unsigned char *s, size_t n)
{
	size_t i = 0;
	while (i < n) {
		if (s[i] < 0x80) {
			escape_ascii(b, s[i]);
			i++;
			continue;
		}
		size_t len = utf8_len(s + i, n - i);
		if (len) {
			buf_add(b, s + i, len);
			i += len;
		} else {
			buf_add(b, "\\ufffd", 6);
			i++;
		}
	}
}
