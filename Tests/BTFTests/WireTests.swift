import BTF
import Foundation
import Testing

@Suite struct WireTests {
    @Test(arguments: BTFFixtures.kernels)
    func kernelBTFRoundTripsByteForByte(_ kernel: KernelBTF) throws {
        let bytes = try BTFFixtures.read(kernel.path)
        let btf = try BTF(decoding: bytes)
        #expect(btf.types.count > 1000)
        #expect(btf.encoded() == bytes)
    }

    @Test func allKernelFixturesPresentInCI() { BTFFixtures.requireAllKernels() }

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
