// Where cnnc keeps what it computes once per machine (compiled runtime objects, the measured
// FMA peak): $CNNC_CACHE_DIR, else $XDG_CACHE_HOME/cnnc, else ~/.cache/cnnc.

import Foundation

/// The cache folder's location.
public enum CacheDirectory {
    /// The folder (not created here); nil when neither variable nor HOME is set.
    public static func path(environment: [String: String] = ProcessInfo.processInfo.environment) -> String? {
        environment["CNNC_CACHE_DIR"].flatMap { $0.isEmpty ? nil : $0 }
            ?? environment["XDG_CACHE_HOME"].flatMap { $0.isEmpty ? nil : "\($0)/cnnc" }
            ?? environment["HOME"].map { "\($0)/.cache/cnnc" }
    }
}
