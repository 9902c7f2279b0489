// Which distribution a kernel belongs to, for the catalog's `<distro>/<version>/` directories.
// Matching never relies on this (the build-id does); it files entries where BTFHub would.
import FoundationEssentials

/// Inference of distro ID and VERSION_ID from what a kernel image and its package say.
public enum DistroInference {
    /// Debian release by kernel series.
    static let debian: [String: String] = ["4.9": "9", "4.19": "10", "5.10": "11", "6.1": "12", "6.12": "13"]
    /// Ubuntu LTS release by its GA kernel series.
    static let ubuntu: [String: String] = [
        "4.4": "16.04", "4.15": "18.04", "5.4": "20.04", "5.15": "22.04", "6.8": "24.04",
    ]

    /// `(distro, version)` from the release string, the banner's UTS version and package facts.
    public static func infer(
        release: String, utsVersion: String?, packageMaintainer: String?,
        packageVersion: String?, container: String?
    ) -> (String, String) {
        let series = release.split(separator: ".").prefix(2).joined(separator: ".")
        let uts = utsVersion ?? ""
        let maintainer = packageMaintainer ?? ""
        let isUbuntu =
            container == "ddeb" || maintainer.contains("Ubuntu") || uts.contains("Ubuntu")
            || (packageVersion ?? "").contains("ubuntu")
        if isUbuntu { return ("ubuntu", ubuntu[series] ?? KernelIdentity.unknownVersion) }
        // A distro tag in the release itself is the most specific fact there is.
        if let n = number(after: ".el", in: release) { return ("rhel", n) }
        if let n = number(after: ".amzn", in: release) { return ("amzn", n) }
        if let n = number(after: ".fc", in: release) { return ("fedora", n) }
        if let n = number(after: ".al", in: release) { return ("alinux", n) }
        if uts.contains("Debian") || maintainer.contains("debian") || maintainer.contains("Debian") {
            return ("debian", debian[series] ?? KernelIdentity.unknownVersion)
        }
        return (KernelIdentity.unknownDistro, KernelIdentity.unknownVersion)
    }

    /// The digits right after `marker` (`4.18.0-513.el8.x86_64` → `8` for `.el`).
    static func number(after marker: String, in text: String) -> String? {
        var search = text[...]
        while let r = search.firstRange(of: marker) {
            let digits = search[r.upperBound...].prefix { $0.isNumber }
            if !digits.isEmpty { return String(digits) }
            search = search[r.upperBound...]
        }
        return nil
    }
}
