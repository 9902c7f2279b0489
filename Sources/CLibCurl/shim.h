// libcurl, loaded at run time. Only `btfgen sync` downloads; linking libcurl would make every
// command (attach and install on target machines included) need libcurl and its two dozen
// libraries at start-up, and Debian's build requires its versioned symbols (CURL_OPENSSL_4),
// which other distributions' libcurl lacks. So the headers give the types and this table the
// functions, resolved by dlopen on first use.
#include <curl/curl.h>
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

typedef struct {
    CURLcode (*global_init)(long flags);
    CURL *(*easy_init)(void);
    void (*easy_cleanup)(CURL *handle);
    CURLcode (*easy_perform)(CURL *handle);
    CURLcode (*easy_setopt)(CURL *handle, CURLoption option, ...);
    CURLcode (*easy_getinfo)(CURL *handle, CURLINFO info, ...);
    const char *(*easy_strerror)(CURLcode code);
} btfgen_curl_api;

/// Fill `api` from libcurl.so.4 (OpenSSL or GnuTLS build); 0 on success, else -1 with the
/// loader's message in `error`.
static inline int btfgen_curl_load(btfgen_curl_api *api, char *error, size_t error_size) {
    const char *names[] = {"libcurl.so.4", "libcurl-gnutls.so.4"};
    void *lib = NULL;
    for (size_t i = 0; i < sizeof names / sizeof names[0] && !lib; i++) {
        lib = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
    }
    if (!lib) {
        const char *why = dlerror();
        snprintf(error, error_size, "%s", why ? why : "libcurl.so.4 not found");
        return -1;
    }
#define BTFGEN_CURL_SYMBOL(field, name)                                                 \
    if (!(*(void **)&api->field = dlsym(lib, name))) {                                 \
        snprintf(error, error_size, "libcurl.so.4 has no %s", name);                    \
        return -1;                                                                      \
    }
    BTFGEN_CURL_SYMBOL(global_init, "curl_global_init")
    BTFGEN_CURL_SYMBOL(easy_init, "curl_easy_init")
    BTFGEN_CURL_SYMBOL(easy_cleanup, "curl_easy_cleanup")
    BTFGEN_CURL_SYMBOL(easy_perform, "curl_easy_perform")
    BTFGEN_CURL_SYMBOL(easy_setopt, "curl_easy_setopt")
    BTFGEN_CURL_SYMBOL(easy_getinfo, "curl_easy_getinfo")
    BTFGEN_CURL_SYMBOL(easy_strerror, "curl_easy_strerror")
#undef BTFGEN_CURL_SYMBOL
    return 0;
}

// curl_easy_setopt and curl_easy_getinfo are variadic, which Swift cannot call: one typed
// wrapper per argument kind libcurl documents for the options btfgen sets.
static inline CURLcode btfgen_curl_set_long(const btfgen_curl_api *api, CURL *handle, CURLoption option, long value) {
    return api->easy_setopt(handle, option, value);
}
static inline CURLcode btfgen_curl_set_offset(
    const btfgen_curl_api *api, CURL *handle, CURLoption option, curl_off_t value) {
    return api->easy_setopt(handle, option, value);
}
static inline CURLcode btfgen_curl_set_string(
    const btfgen_curl_api *api, CURL *handle, CURLoption option, const char *value) {
    return api->easy_setopt(handle, option, value);
}
static inline CURLcode btfgen_curl_set_pointer(const btfgen_curl_api *api, CURL *handle, CURLoption option, void *value) {
    return api->easy_setopt(handle, option, value);
}
typedef size_t (*btfgen_curl_write_callback)(char *data, size_t size, size_t count, void *context);
static inline CURLcode btfgen_curl_set_write_function(
    const btfgen_curl_api *api, CURL *handle, btfgen_curl_write_callback callback) {
    return api->easy_setopt(handle, CURLOPT_WRITEFUNCTION, callback);
}
static inline CURLcode btfgen_curl_get_long(const btfgen_curl_api *api, CURL *handle, CURLINFO info, long *value) {
    return api->easy_getinfo(handle, info, value);
}
