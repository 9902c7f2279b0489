// How Foundation's NSError printed CocoaError and POSIXError. FoundationEssentials' own
// description is a struct dump (`CocoaError(code: FoundationEssentials.CocoaError.Code(...`), so
// messages that quote a file system error go through `describe(_:)` to read as they always did.
import FoundationEssentials

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// `"\(error)"` as it read with Foundation: `Error Domain=NSCocoaErrorDomain Code=4 "The file
/// doesn’t exist."UserInfo={NSFilePath=..., NSURL=..., NSUnderlyingError=...}` for Cocoa and POSIX
/// errors (user info keys sorted; Foundation printed them in hash order), anything else as is.
package func describe(_ error: any Error) -> String {
    if let e = error as? CocoaError {
        var text =
            "Error Domain=NSCocoaErrorDomain Code=\(e.code.rawValue) \"\(cocoaReason(e.code.rawValue) ?? "(null)")\""
        if !e.userInfo.isEmpty {
            let items = e.userInfo.sorted { $0.key < $1.key }.map { key, value -> String in
                if let underlying = value as? any Error { return "\(key)=\(describe(underlying))" }
                return "\(key)=\(value)"
            }
            text += "UserInfo={\(items.joined(separator: ", "))}"
        }
        return text
    }
    if let e = error as? POSIXError {
        return
            "Error Domain=NSPOSIXErrorDomain Code=\(e.code.rawValue) \"\(String(cString: strerror(e.code.rawValue)))\""
    }
    return "\(error)"
}

/// `error.localizedDescription` as Foundation wrote it for Cocoa and POSIX errors.
package func localizedDescription(_ error: any Error) -> String {
    let prefix = "The operation could not be completed."
    if let e = error as? CocoaError {
        guard let reason = cocoaReason(e.code.rawValue) else {
            return "\(prefix) (NSCocoaErrorDomain error \(e.code.rawValue).)"
        }
        return "\(prefix) \(reason)"
    }
    if let e = error as? POSIXError { return "\(prefix) \(String(cString: strerror(e.code.rawValue)))" }
    return describe(error)
}

/// Foundation's failure reasons for the Cocoa error codes btfgen can meet (file and coding errors).
private func cocoaReason(_ code: Int) -> String? {
    switch code {
    case 4, 260: return "The file doesn’t exist."
    case 255: return "The file couldn’t be locked."
    case 257, 513: return "You don’t have permission."
    case 258, 514: return "The file name is invalid."
    case 259: return "The file isn’t in the correct format."
    case 261, 517: return "The specified text encoding isn’t applicable."
    case 262, 518: return "The specified URL type isn’t supported."
    case 263: return "The item is too large."
    case 264: return "The text encoding of the contents couldn’t be determined."
    case 516: return "A file with the same name already exists."
    case 640: return "There isn’t enough space."
    case 642: return "The volume is read only."
    case 1024, 2048: return "The value is invalid."
    case 3072: return "The operation was cancelled."
    case 3328: return "The requested operation is not supported."
    case 3840: return "The data is not in the correct format."
    case 3841: return "The data is in a format that this application doesn’t understand."
    case 3842: return "An error occurred in the source of the data."
    case 3851: return "An error occurred in the destination for the data."
    case 3852: return "An error occurred in the content of the data."
    case 4864, 4866: return "The data isn’t in the correct format."
    case 4865: return "The data is missing."
    default: return nil
    }
}
