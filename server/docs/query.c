/* Free text (a question, an error message) to a safe FTS5 MATCH expression:
 * user text never reaches MATCH as syntax, only as quoted terms. */
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "dbuf.h"
#include "internal.h"

#define MAX_TERM_BYTES 64

/* English function words, question words, and the fixed words of a Python
 * traceback: they match everything and rank nothing. Sorted for bsearch. */
static const char *const stopwords[] = {
    "a", "about", "after", "all", "also", "an", "and", "any", "are", "as", "at", "be", "been", "before",
    "being", "but", "by", "call", "can", "could", "did", "do", "does", "doing", "for", "from", "get", "got",
    "had", "has", "have", "he", "her", "here", "his", "how", "i", "if", "in", "into", "is", "it", "its",
    "just", "last", "me", "most", "my", "no", "not", "of", "on", "or", "our", "please", "recent", "she",
    "should", "so", "some", "than", "that", "the", "their", "them", "then", "there", "these", "they", "this",
    "those", "to", "traceback", "use", "using", "want", "was", "we", "were", "what", "when", "where", "which",
    "while", "who", "why", "will", "with", "would", "you", "your",
};

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static bool is_stopword(const char *w) {
  return bsearch(&w, stopwords, ARRAY_LEN(stopwords), sizeof stopwords[0], cmp_str) != NULL;
}

/* Words that start a noun phrase: never the first part of an identifier a
 * question spells as separate words. Sorted for bsearch. */
static const char *const determiners[] = {"a",     "an",   "any",   "he",    "her",  "his",   "i",    "it",   "its",
                                          "me",    "my",   "our",   "she",   "some", "that",  "the",  "their",
                                          "them",  "these", "they", "this",  "those", "us",   "we",    "you",  "your"};

static bool is_determiner(const char *w) {
  return bsearch(&w, determiners, ARRAY_LEN(determiners), sizeof determiners[0], cmp_str) != NULL;
}

/* Appends a copy of w to terms[0..*n) unless it is there already; returns
 * the (reallocated) array. */
static char **add_term(char **terms, size_t *n, const char *w) {
  for (size_t i = 0; i < *n; i++)
    if (!strcmp(terms[i], w)) return terms;
  terms = xrealloc(terms, (*n + 1) * sizeof *terms);
  terms[(*n)++] = xstrdup(w);
  return terms;
}

static bool word_byte(unsigned char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c >= 0x80;
}

char **docs_query_words(const char *text, size_t max_terms, size_t *n_out) {
  *n_out = 0;
  if (!text) return NULL;
  char **terms = NULL;
  size_t n = 0;
  const unsigned char *p = (const unsigned char *)text;
  while (*p && n < max_terms) {
    while (*p && !word_byte(*p)) p++;
    const unsigned char *s = p;
    while (*p && word_byte(*p)) p++;
    size_t len = (size_t)(p - s);
    if (len < 2 || len > MAX_TERM_BYTES) continue;
    char w[MAX_TERM_BYTES + 1];
    for (size_t i = 0; i < len; i++) w[i] = (char)((s[i] >= 'A' && s[i] <= 'Z') ? s[i] + 32 : s[i]);
    w[len] = '\0';
    /* a lone UTF-8 fragment cut at a byte that is not a letter can still be
     * invalid UTF-8; FTS5 copes with it, and quoting keeps it a term */
    if (!is_stopword(w)) terms = add_term(terms, &n, w);
  }
  *n_out = n;
  return terms;
}

char **docs_query_compounds(const char *text, size_t max_terms, size_t *n_out) {
  *n_out = 0;
  if (!text) return NULL;
  char **out = NULL;
  size_t n = 0;
  /* the last three words seen (lowercased), stopwords included: "extract
   * all" is extractall, "is file" isfile */
  char prev[3][MAX_TERM_BYTES + 1] = {{0}};
  const unsigned char *p = (const unsigned char *)text;
  while (*p && n < max_terms) {
    while (*p && !word_byte(*p)) p++;
    const unsigned char *s = p;
    while (*p && word_byte(*p)) p++;
    size_t len = (size_t)(p - s);
    if (!len) break;
    if (len > MAX_TERM_BYTES) {
      prev[0][0] = prev[1][0] = prev[2][0] = '\0';
      continue;
    }
    memmove(prev[0], prev[1], sizeof prev[0]);
    memmove(prev[1], prev[2], sizeof prev[0]);
    for (size_t i = 0; i < len; i++) prev[2][i] = (char)((s[i] >= 'A' && s[i] <= 'Z') ? s[i] + 32 : s[i]);
    prev[2][len] = '\0';
    for (int k = 1; k >= 0 && n < max_terms; k--) {
      if (!prev[k][0] || (k == 0 && !prev[1][0])) continue;
      /* "how to" is not howto: a part must be a word of the question */
      if (is_stopword(prev[k]) && is_stopword(prev[2]) && (k == 1 || is_stopword(prev[1]))) continue;
      /* "my program" is not myprogram: examples name their placeholders
       * myfile, myprogram, thefile, which match no question */
      if (is_determiner(prev[k])) continue;
      char w[3 * MAX_TERM_BYTES + 1];
      snprintf(w, sizeof w, "%s%s%s", prev[k], k == 0 ? prev[1] : "", prev[2]);
      if (strlen(w) <= MAX_TERM_BYTES && !is_stopword(w)) out = add_term(out, &n, w);
    }
  }
  *n_out = n;
  return out;
}

char *docs_fts_query(const char *text, size_t max_terms) {
  size_t n = 0;
  char **terms = docs_query_words(text, max_terms, &n);
  if (!n) return NULL;
  dbuf q;
  dbuf_init(&q, 0);
  for (size_t i = 0; i < n; i++) {
    dbuf_addf(&q, "%s\"%s\"", i ? " OR " : "", terms[i]);
    free(terms[i]);
  }
  free(terms);
  return dbuf_take(&q);
}
