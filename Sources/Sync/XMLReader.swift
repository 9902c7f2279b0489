// A forward-only XML reader: libxml2's xmlTextReader, fed from a pull callback. rpm-md's
// primary.xml of a large repository is hundreds of MB uncompressed; the reader holds one node at
// a time, so the index is read while it is decompressed, never held whole.
import CLibXML2
import SystemSupport

/// One pass over an XML document, node by node.
final class XMLStreamReader {
    private let api: UnsafeMutablePointer<btfgen_xml_api>
    private let reader: OpaquePointer
    private let feed: XMLFeed
    let label: String

    /// Read XML from `source`, which fills a buffer and returns the bytes given (0 at the end).
    /// Messages name `label`.
    init(label: String, source: @escaping (UnsafeMutableRawBufferPointer) throws(SyncError) -> Int) throws(SyncError) {
        api = try LibXML2.get()
        feed = XMLFeed(source: source)
        self.label = label
        let context = Unmanaged.passUnretained(feed).toOpaque()
        guard
            let r = api.pointee.reader_for_io(
                feedRead, nil, context, label, nil, Int32(BTFGEN_XML_PARSE_NONET))
        else { throw .badIndex(url: label, problem: "libxml2 could not start reading it") }
        reader = r
        api.pointee.set_error_handler(r, feedError, context)
    }

    deinit { api.pointee.free_reader(reader) }

    /// Advance to the next node; false at the end of the document.
    func read() throws(SyncError) -> Bool { try check(api.pointee.read(reader)) }

    /// Advance past the current node's subtree to its next sibling (or what follows).
    func skipSubtree() throws(SyncError) -> Bool { try check(api.pointee.next(reader)) }

    private func check(_ status: Int32) throws(SyncError) -> Bool {
        // A source failure (a read error, a digest that does not match) is the cause of the
        // parse error it leads to, and is what the user is told.
        if let e = feed.sourceError { throw e }
        if status < 0 || feed.message != nil {
            let where_ = feed.line > 0 ? "line \(feed.line): " : ""
            throw .badIndex(
                url: label, problem: "it is not well-formed XML (\(where_)\(feed.message ?? "parse error"))")
        }
        return status == 1
    }

    var nodeType: Int32 { api.pointee.node_type(reader) }
    var isElement: Bool { nodeType == Int32(BTFGEN_XML_ELEMENT) }
    var isEndElement: Bool { nodeType == Int32(BTFGEN_XML_END_ELEMENT) }
    var isText: Bool { nodeType == Int32(BTFGEN_XML_TEXT) || nodeType == Int32(BTFGEN_XML_CDATA) }
    var depth: Int { Int(api.pointee.depth(reader)) }
    var isEmptyElement: Bool { api.pointee.is_empty_element(reader) == 1 }
    var localName: String { api.pointee.const_local_name(reader).map { String(cString: $0) } ?? "" }
    var value: String { api.pointee.const_value(reader).map { String(cString: $0) } ?? "" }

    /// The current element's attribute `name` (a qualified name, as `xml:base`).
    func attribute(_ name: String) -> String? {
        guard api.pointee.move_to_attribute(reader, name) == 1 else { return nil }
        defer { _ = api.pointee.move_to_element(reader) }
        return value
    }
}

/// What the C callbacks share with the reader: the byte source and the first error.
private final class XMLFeed {
    let source: (UnsafeMutableRawBufferPointer) throws(SyncError) -> Int
    var sourceError: SyncError?
    var message: String?
    var line = 0
    init(source: @escaping (UnsafeMutableRawBufferPointer) throws(SyncError) -> Int) { self.source = source }
}

private let feedRead: btfgen_xml_read_callback = { context, buffer, length in
    let feed = Unmanaged<XMLFeed>.fromOpaque(context!).takeUnretainedValue()
    guard feed.sourceError == nil, let buffer else { return -1 }
    do throws(SyncError) {
        return Int32(try feed.source(UnsafeMutableRawBufferPointer(start: buffer, count: Int(length))))
    } catch {
        feed.sourceError = error
        return -1
    }
}

/// libxml2 would print its messages on stderr; the first error is kept for the one line the user
/// sees. Warnings (a relative namespace URI, say) do not stop the read.
private let feedError: btfgen_xml_error_callback = { context, message, severity, locator in
    let feed = Unmanaged<XMLFeed>.fromOpaque(context!).takeUnretainedValue()
    guard feed.message == nil, severity == Int32(BTFGEN_XML_SEVERITY_ERROR) else { return }
    feed.message = message.map { String(cString: $0).trimming(.whitespacesAndNewlines) } ?? "parse error"
    if let locator, let api = try? LibXML2.get() { feed.line = Int(api.pointee.locator_line_number(locator)) }
}

/// libxml2's functions, resolved from libxml2.so.2 on first use and kept for the process.
private enum LibXML2 {
    static let shared = LoadedLibrary(empty: btfgen_xml_api(), load: btfgen_xml_load)

    static func get() throws(SyncError) -> UnsafeMutablePointer<btfgen_xml_api> {
        guard let api = shared.table else { throw .libxml2Missing(reason: shared.failure) }
        return api
    }
}
