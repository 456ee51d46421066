// Data-parallel training with Open MPI (`cnnc train --ranks N`), on this machine: 2 ranks
// follow one process at the same global batch (LeNet, and a batch-norm network with
// --sync-bn), two 2-rank runs are bitwise identical, a checkpoint written by 2 ranks resumes
// in 1 process and in 4, a rank that fails ends the whole job with its message, and a
// non-finite loss stops every rank.
//
// Why 2 ranks are not bitwise one process: the gradient of a batch of 64 is then the sum of
// two sums of 32, rounded differently. Over 20 SGD steps that stays within a few 1e-7 of the
// weights unless a ReLU or max-pool input near a tie flips (then about lr * |gradient|);
// the tolerance below is 1e-4 of each tensor's largest value.

import CNNCDriver
import Foundation
import XCTest

final class DistributedTrainingTests: XCTestCase {
    override func setUpWithError() throws {
        guard TrainCommand.findOnPath("mpirun") != nil, TrainCommand.findOnPath("mpicc") != nil else {
            throw XCTSkip("Open MPI is not installed (scripts/install-deps.sh installs openmpi-bin libopenmpi-dev)")
        }
    }

    /// A small network with batch norm (statistics per process unless --sync-bn).
    static let batchNormNet = """
    network bnnet
    input image shape=1x28x28
    conv c1 filters=4 size=3 pad=1 stride=2
    batchnorm bn1
    relu
    conv c2 filters=8 size=3 pad=1 stride=2
    batchnorm bn2
    relu
    global_avgpool
    dense logits units=2
    """

    func train(_ model: String, _ dir: String, _ extra: [String], save: String) throws -> CLIResult {
        let r = try runCNNC(["train", model, "--data", "\(dir)/x.npy", "--labels", "\(dir)/y.npy",
                             "--test-data", "\(dir)/x.npy", "--test-labels", "\(dir)/y.npy", "--batch", "64",
                             "--lr", "0.01", "--save", "\(dir)/\(save).safetensors"] + extra)
        XCTAssertEqual(r.status, 0, r.stdout + r.stderr)
        return r
    }

    /// The largest difference between the tensors of two checkpoints, relative to each tensor's largest value.
    func difference(_ dir: String, _ a: String, _ b: String) throws -> Double {
        let x = try SafetensorsFile.read("\(dir)/\(a).safetensors"), y = try SafetensorsFile.read("\(dir)/\(b).safetensors")
        XCTAssertEqual(x.keys.sorted(), y.keys.sorted())
        var worst = 0.0
        for (key, t) in x where !key.hasSuffix(".momentum") {
            guard let u = y[key], u.data.count == t.data.count else { XCTFail("\(key) differs in shape"); continue }
            let scale = max(t.data.map { abs(Double($0)) }.max() ?? 0, 1e-30)
            for (p, q) in zip(t.data, u.data) { worst = max(worst, abs(Double(p) - Double(q)) / scale) }
        }
        return worst
    }

    func bitwiseEqual(_ dir: String, _ a: String, _ b: String) throws -> Bool {
        let x = try SafetensorsFile.read("\(dir)/\(a).safetensors"), y = try SafetensorsFile.read("\(dir)/\(b).safetensors")
        return x.keys.sorted() == y.keys.sorted() && x.keys.allSatisfy { x[$0]!.data.map(\.bitPattern) == y[$0]!.data.map(\.bitPattern) }
    }

    func testTwoRanksFollowOneProcessAndRepeatBitwise() throws {
        let dir = try temporaryDirectory()
        try writeToyData(dir, count: 256)
        let steps = ["--epochs", "5", "--steps", "20"]
        let one = try train(examplePath("lenet"), dir, steps + ["--threads", "1"], save: "one")
        let two = try train(examplePath("lenet"), dir, steps + ["--ranks", "2", "--threads", "1"], save: "two")
        let again = try train(examplePath("lenet"), dir, steps + ["--ranks", "2", "--threads", "1"], save: "again")
        XCTAssertTrue(two.stdout.contains("(4 steps/epoch, batch 64 = 2 processes x 32)"), two.stdout)
        XCTAssertTrue(one.stdout.contains("epoch 5/5: train loss"), one.stdout)
        XCTAssertTrue(two.stdout.contains("epoch 5/5: train loss"), two.stdout)
        XCTAssertEqual(two.stdout.components(separatedBy: "\n").filter { $0.hasPrefix("epoch 5/5:") }.count, 1,
                       "only rank 0 prints: \(two.stdout)")
        XCTAssertLessThan(try difference(dir, "one", "two"), 1e-4)
        XCTAssertTrue(try bitwiseEqual(dir, "two", "again"), "two 2-rank runs differ")
    }

    func testSynchronizedBatchNormFollowsOneProcess() throws {
        let dir = try temporaryDirectory()
        try writeToyData(dir, count: 256)
        let model = "\(dir)/bnnet.net"
        try Self.batchNormNet.write(toFile: model, atomically: true, encoding: .utf8)
        let steps = ["--epochs", "5", "--steps", "20"]
        _ = try train(model, dir, steps + ["--threads", "1"], save: "one")
        let synced = try train(model, dir, steps + ["--ranks", "2", "--threads", "1", "--sync-bn"], save: "synced")
        _ = try train(model, dir, steps + ["--ranks", "2", "--threads", "1"], save: "own")
        XCTAssertTrue(synced.stdout.contains("2 processes x 32, synchronized batch norm"), synced.stdout)
        let syncedDifference = try difference(dir, "one", "synced"), ownDifference = try difference(dir, "one", "own")
        XCTAssertLessThan(syncedDifference, 1e-4)
        // each process's own statistics (PyTorch DDP's default) train another trajectory
        XCTAssertGreaterThan(ownDifference, 100 * max(syncedDifference, 1e-7))
    }

    func testCheckpointsResumeWithAnyNumberOfRanks() throws {
        let dir = try temporaryDirectory()
        try writeToyData(dir, count: 256)
        _ = try train(examplePath("lenet"), dir, ["--epochs", "4", "--threads", "1"], save: "straight")
        _ = try train(examplePath("lenet"), dir, ["--epochs", "2", "--ranks", "2", "--threads", "1"], save: "half")
        for (ranks, name) in [(1, "one"), (4, "four")] {
            var extra = ["--epochs", "4", "--threads", "1", "--resume", "\(dir)/half.safetensors"]
            if ranks > 1 { extra += ["--ranks", "\(ranks)"] }
            let r = try train(examplePath("lenet"), dir, extra, save: name)
            XCTAssertTrue(r.stdout.contains("epoch 3/4: train loss") && r.stdout.contains("epoch 4/4: train loss"), r.stdout)
            XCTAssertFalse(r.stdout.contains("epoch 2/4:"), r.stdout)
            XCTAssertTrue(r.stdout.contains("saved \(dir)/\(name).safetensors (step 16)"), r.stdout)
            XCTAssertLessThan(try difference(dir, "straight", name), 1e-4, "resumed with \(ranks) ranks")
        }
    }

    func testAFailingRankEndsEveryRank() throws {
        let dir = try temporaryDirectory()
        try writeToyData(dir, count: 256)
        // The built trainer under the user's own mpirun: rank 1 is given a file that is not there.
        let built = try runCNNC(["train", examplePath("lenet"), "--data", "\(dir)/x.npy", "--labels", "\(dir)/y.npy",
                                 "--batch", "64", "--ranks", "2", "--emit-trainer", "\(dir)/trainer"])
        XCTAssertEqual(built.status, 0, built.stderr)
        XCTAssertTrue(built.stdout.contains("mpirun -np 2"), built.stdout)
        let trainer = "\(dir)/trainer", common = ["format=npy", "labels=\(dir)/y.npy", "epochs=100"]
        var launch = ["mpirun", "--oversubscribe"]
        if getuid() == 0 { launch.append("--allow-run-as-root") }
        launch += ["-np", "1", trainer, "data=\(dir)/x.npy"] + common + [":", "-np", "1", trainer, "data=\(dir)/missing.npy"] + common
        let started = Date()
        let result = try Shell.run(launch)
        XCTAssertNotEqual(result.status, 0, result.output)
        XCTAssertTrue(result.output.contains("error: rank 1 of 2:") && result.output.contains("missing.npy"), result.output)
        XCTAssertLessThan(Date().timeIntervalSince(started), 60, "the job did not end promptly")

        // A non-finite loss is the whole job's (summed before the check): every rank stops, rank 0 says why.
        let r = try runCNNC(["train", examplePath("lenet"), "--data", "\(dir)/x.npy", "--labels", "\(dir)/y.npy",
                             "--batch", "64", "--epochs", "3", "--lr", "1e9", "--ranks", "2", "--threads", "1"])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains("error: loss is") || r.stderr.contains("error: a gradient is not finite"), r.stderr)

        // A global batch that does not split evenly.
        let odd = try runCNNC(["train", examplePath("lenet"), "--data", "\(dir)/x.npy", "--labels", "\(dir)/y.npy",
                               "--batch", "63", "--ranks", "2"])
        XCTAssertEqual(odd.status, 1)
        XCTAssertTrue(odd.stderr.contains("--batch 63 does not split evenly over 2 processes"), odd.stderr)
    }
}
