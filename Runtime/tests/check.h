/*
 * check.h — the check framework and file helpers shared by the runtime's test programs.
 *
 * CHECK and its variants count passes and print one line per failure ("file:line: ...").
 * Test files live in a fresh mkdtemp directory, g_dir, removed by remove_temp_dir. Include
 * this once, from the test program's only source file, after defining _POSIX_C_SOURCE.
 */
#ifndef CNNC_TEST_CHECK_H
#define CNNC_TEST_CHECK_H

#include "cnnc_runtime.h"

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---------------------------------------------------------------------------------------
 * The check framework
 * ------------------------------------------------------------------------------------- */

static int g_passed, g_failed;
static char g_dir[256]; /* the temporary directory */

static void check(int ok, const char *what, const char *file, int line) {
    if (ok) {
        g_passed++;
    } else {
        g_failed++;
        printf("%s:%d: check failed: %s\n", file, line, what);
    }
}

/* Checks that an expression holds. */
#define CHECK(cond) check((cond) != 0, #cond, __FILE__, __LINE__)

/* Checks a status, printing the actual one and the error message on failure. */
#define CHECK_STATUS(got, want, err) check_status((got), (want), (err), #got, __FILE__, __LINE__)

static void check_status(cnnc_status got, cnnc_status want, const cnnc_error *err, const char *expr,
                         const char *file, int line) {
    if (got == want) {
        g_passed++;
        return;
    }
    g_failed++;
    printf("%s:%d: %s returned %d (%s), expected %d (%s); message: %s\n", file, line, expr,
           (int)got, cnnc_status_string(got), (int)want, cnnc_status_string(want),
           err != NULL ? err->message : "(none)");
}

/* Checks that two strings are equal. */
#define CHECK_STR(got, want) check_str((got), (want), __FILE__, __LINE__)

static void check_str(const char *got, const char *want, const char *file, int line) {
    if (got != NULL && want != NULL && strcmp(got, want) == 0) {
        g_passed++;
        return;
    }
    g_failed++;
    printf("%s:%d: got \"%s\", expected \"%s\"\n", file, line, got ? got : "(null)",
           want ? want : "(null)");
}

/* Checks that `text` contains `part`. */
#define CHECK_CONTAINS(text, part) check_contains((text), (part), __FILE__, __LINE__)

static void check_contains(const char *text, const char *part, const char *file, int line) {
    if (text != NULL && strstr(text, part) != NULL) {
        g_passed++;
        return;
    }
    g_failed++;
    printf("%s:%d: \"%s\" does not contain \"%s\"\n", file, line, text ? text : "(null)", part);
}

/* ---------------------------------------------------------------------------------------
 * File helpers
 * ------------------------------------------------------------------------------------- */

/* Declares `var` as the path of file `name` in the temporary directory. */
#define TMP_PATH(var, name) \
    char var[512];          \
    snprintf(var, sizeof var, "%s/%s", g_dir, (name))

static void write_bytes(const char *path, const void *bytes, size_t n) {
    FILE *f = fopen(path, "wb");
    if (f == NULL) {
        printf("cannot create %s\n", path);
        exit(2);
    }
    if (n > 0 && fwrite(bytes, 1, n, f) != n) {
        printf("cannot write %s\n", path);
        exit(2);
    }
    fclose(f);
}

/* Reads a whole file into a malloc'ed buffer. */
static unsigned char *read_bytes(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    *size = 0;
    if (f == NULL) {
        return NULL;
    }
    size_t cap = 4096;
    unsigned char *buf = malloc(cap);
    size_t got;
    while (buf != NULL && (got = fread(buf + *size, 1, cap - *size, f)) > 0) {
        *size += got;
        if (*size == cap) {
            cap *= 2;
            unsigned char *grown = realloc(buf, cap);
            if (grown == NULL) {
                free(buf);
            }
            buf = grown;
        }
    }
    fclose(f);
    return buf;
}

/* Removes `path` and, when it is a directory, everything in it. */
static void remove_tree(const char *path) {
    struct stat info;
    if (lstat(path, &info) != 0) {
        return;
    }
    if (S_ISDIR(info.st_mode)) {
        DIR *d = opendir(path);
        if (d != NULL) {
            struct dirent *entry;
            while ((entry = readdir(d)) != NULL) {
                if (strcmp(entry->d_name, ".") != 0 && strcmp(entry->d_name, "..") != 0) {
                    char child[1024];
                    snprintf(child, sizeof child, "%s/%s", path, entry->d_name);
                    remove_tree(child);
                }
            }
            closedir(d);
        }
        rmdir(path);
    } else {
        unlink(path);
    }
}

/* Removes the temporary directory and everything in it. */
static void remove_temp_dir(void) {
    remove_tree(g_dir);
}

#endif /* CNNC_TEST_CHECK_H */
