import BTF
import Foundation
import TestSupport
import Testing

@Suite struct WireTests {
    @Test(arguments: BTFFixtures.kernels)
    func kernelBTFRoundTripsByteForByte(_ kernel: KernelBTF) throws {
        let bytes = try BTFFixtures.read(kernel.path)
        let btf = try BTF(decoding: bytes)
        #expect(btf.types.count > 1000)
        #expect(btf.encoded() == bytes)
    }

    /// The tests over `BTFFixtures.kernels` cover only the kernels found: this one fails in CI when one is not.
    @Test(
        .requires(
            .hostBTF, .fixture("BTFGEN_DEBIAN_VMLINUX"), .fixture("BTFGEN_TEST_VMLINUX"), .tool("llvm-objcopy-14"),
            .tool("pahole")))
    func allKernelFixturesPresentInCI() {
        #expect(BTFFixtures.host != nil, "/sys/kernel/btf/vmlinux is not readable")
        #expect(BTFFixtures.debian != nil, "llvm-objcopy-14 could not dump .BTF from BTFGEN_DEBIAN_VMLINUX")
        #expect(BTFFixtures.testKernel != nil, "pahole could not encode BTFGEN_TEST_VMLINUX")
    }

    @Test(arguments: BTFFixtures.kernels)
    func bigEndianRoundTrip(_ kernel: KernelBTF) throws {
        var btf = try BTF(decoding: try BTFFixtures.read(kernel.path))
        btf.byteOrder = .big
        let swapped = btf.encoded()
        #expect(swapped[0] == 0xEB && swapped[1] == 0x9F)
        let again = try BTF(decoding: swapped)
        #expect(again == btf)
        #expect(again.encoded() == swapped)
    }
}
