// libxml2's streaming reader (xmlTextReader), loaded at run time. Only `btfgen sync` reads XML
// (rpm-md repository metadata). libxml2's headers live in /usr/include/libxml2, which only its
// pkg-config flags put on the include path, and those flags also link the library into every
// command: so the few functions used are declared here, with the signatures of libxml2's
// xmlreader.h and xmlIO.h (unchanged since 2.6, soname libxml2.so.2), and resolved by dlopen on
// first use, as libcurl is. (Debian's libarchive links libxml2 already, so there dlopen finds it
// loaded; a libarchive built without it leaves btfgen needing libxml2 only for sync.)
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

typedef struct btfgen_xml_reader btfgen_xml_reader;  // xmlTextReader, opaque
typedef void *btfgen_xml_locator;                    // xmlTextReaderLocatorPtr

/// xmlInputReadCallback: fill `buffer` with up to `length` bytes; 0 at the end, -1 on error.
typedef int (*btfgen_xml_read_callback)(void *context, char *buffer, int length);
/// xmlInputCloseCallback.
typedef int (*btfgen_xml_close_callback)(void *context);
/// xmlTextReaderErrorFunc (`severity` is xmlParserSeverities).
typedef void (*btfgen_xml_error_callback)(void *arg, const char *message, int severity, btfgen_xml_locator locator);

/// xmlReaderTypes values the readers switch on.
enum {
    BTFGEN_XML_ELEMENT = 1,
    BTFGEN_XML_TEXT = 3,
    BTFGEN_XML_CDATA = 4,
    BTFGEN_XML_END_ELEMENT = 15,
};
/// xmlParserOption: no network access, no entity substitution or DTD loading (the defaults).
enum { BTFGEN_XML_PARSE_NONET = 1 << 11 };

typedef struct {
    void (*init_parser)(void);
    btfgen_xml_reader *(*reader_for_io)(
        btfgen_xml_read_callback read, btfgen_xml_close_callback close, void *context, const char *url,
        const char *encoding, int options);
    void (*free_reader)(btfgen_xml_reader *reader);
    int (*read)(btfgen_xml_reader *reader);
    int (*next)(btfgen_xml_reader *reader);
    int (*node_type)(btfgen_xml_reader *reader);
    int (*depth)(btfgen_xml_reader *reader);
    int (*is_empty_element)(btfgen_xml_reader *reader);
    const unsigned char *(*const_local_name)(btfgen_xml_reader *reader);
    const unsigned char *(*const_value)(btfgen_xml_reader *reader);
    int (*move_to_attribute)(btfgen_xml_reader *reader, const unsigned char *name);
    int (*move_to_element)(btfgen_xml_reader *reader);
    void (*set_error_handler)(btfgen_xml_reader *reader, btfgen_xml_error_callback callback, void *arg);
    int (*locator_line_number)(btfgen_xml_locator locator);
} btfgen_xml_api;

/// Fill `api` from libxml2.so.2; 0 on success, else -1 with the loader's message in `error`.
static inline int btfgen_xml_load(btfgen_xml_api *api, char *error, size_t error_size) {
    void *lib = dlopen("libxml2.so.2", RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        const char *why = dlerror();
        snprintf(error, error_size, "%s", why ? why : "libxml2.so.2 not found");
        return -1;
    }
#define BTFGEN_XML_SYMBOL(field, name)                                                  \
    if (!(*(void **)&api->field = dlsym(lib, name))) {                                 \
        snprintf(error, error_size, "libxml2.so.2 has no %s", name);                    \
        return -1;                                                                      \
    }
    BTFGEN_XML_SYMBOL(init_parser, "xmlInitParser")
    BTFGEN_XML_SYMBOL(reader_for_io, "xmlReaderForIO")
    BTFGEN_XML_SYMBOL(free_reader, "xmlFreeTextReader")
    BTFGEN_XML_SYMBOL(read, "xmlTextReaderRead")
    BTFGEN_XML_SYMBOL(next, "xmlTextReaderNext")
    BTFGEN_XML_SYMBOL(node_type, "xmlTextReaderNodeType")
    BTFGEN_XML_SYMBOL(depth, "xmlTextReaderDepth")
    BTFGEN_XML_SYMBOL(is_empty_element, "xmlTextReaderIsEmptyElement")
    BTFGEN_XML_SYMBOL(const_local_name, "xmlTextReaderConstLocalName")
    BTFGEN_XML_SYMBOL(const_value, "xmlTextReaderConstValue")
    BTFGEN_XML_SYMBOL(move_to_attribute, "xmlTextReaderMoveToAttribute")
    BTFGEN_XML_SYMBOL(move_to_element, "xmlTextReaderMoveToElement")
    BTFGEN_XML_SYMBOL(set_error_handler, "xmlTextReaderSetErrorHandler")
    BTFGEN_XML_SYMBOL(locator_line_number, "xmlTextReaderLocatorLineNumber")
#undef BTFGEN_XML_SYMBOL
    api->init_parser();
    return 0;
}
