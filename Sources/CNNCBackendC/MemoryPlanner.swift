// Memory planning for the activation arena: offline interval allocation. Every buffer has a
// size and a lifetime (the steps from its definition to its last read); the planner gives each
// one a 64-byte-aligned offset so that buffers alive at the same step never share bytes, and
// tries to keep the arena close to the lower bound, the peak of simultaneously live floats.
//
// Placement: buffers are taken one at a time in a strategy's order and each goes into the
// tightest gap (best fit) left by the already-placed buffers whose lifetimes overlap its own,
// or on top of them when no gap is big enough. Several orders are tried and the smallest arena
// wins (ties: the earlier one). Everything is ordered by total keys ending in the buffer id,
// so the same requests always give the same plan, whatever their order in the input.
//
// In-place: a request may name an input (`inPlaceOf`) whose lifetime ends at the step that
// defines it and which is at least as large; with `Options.inPlace` the two may be merged into
// one block at one offset (an elementwise kernel reads and writes the same floats). Chains of
// merges form a block of several members; placement checks each member's own lifetime and
// size, so a small tail of a chain does not reserve the head's size for its whole life. A merge
// is a constraint, and one between different sizes can cost more than it saves (the head's
// offset pins the tail), so the orders are tried with every legal merge, with only the
// same-size merges, and with none; the smallest arena wins, merging more on ties.
//
// The result is checked by `violations` before it is returned: a broken plan is a compiler
// bug and stops the compiler rather than corrupt activations at run time.

/// One buffer to place: `size` in floats (already multiplied by the max batch), live from step
/// `first` to step `last` inclusive. Steps are node indices in execution order: a value defined
/// at step i and last read at step j occupies [i, j]; outputs of the network live until the end.
public struct BufferRequest: Hashable, Sendable {
    /// Unique among the requests of one plan.
    public var id: Int
    /// Floats (not bytes); rounded up to the 64-byte alignment by the planner.
    public var size: Int
    /// The step that writes the buffer.
    public var first: Int
    /// The last step that reads it (inclusive).
    public var last: Int
    /// An input whose floats this buffer may reuse: legal when that input's `last` equals this
    /// buffer's `first`, it was defined before (`first` smaller), and its size is at least this
    /// size. The planner merges the two when `MemoryPlanner.Options.inPlace` is set and records
    /// the merge in `MemoryPlan.inPlace`; an illegal hint is ignored.
    public var inPlaceOf: Int?

    public init(id: Int, size: Int, first: Int, last: Int, inPlaceOf: Int? = nil) {
        self.id = id; self.size = size; self.first = first; self.last = last; self.inPlaceOf = inPlaceOf
    }
}

/// Offsets of every request in one arena, with the numbers to judge it by.
public struct MemoryPlan: Hashable, Sendable {
    /// Request id -> offset in floats from the start of the arena, a multiple of 16 (64 bytes).
    public var offsets: [Int: Int]
    /// The arena size in floats (a multiple of 16).
    public var arenaFloats: Int
    /// The sum of all aligned sizes: the arena if every buffer had its own slot.
    public var naiveFloats: Int
    /// The largest sum of aligned sizes live at one step; no plan can be smaller. With
    /// `Options.inPlace`, a legal in-place pair counts once at the step it shares (merged, they
    /// are the same floats there), whether or not the chosen plan merged it.
    public var lowerBoundFloats: Int
    /// In-place merges made: request id -> id of the input whose floats it reuses (same offset).
    /// The caller emits those nodes' kernels in place; other hints were not taken.
    public var inPlace: [Int: Int]
    /// The placement order that gave this plan.
    public var strategy: MemoryPlanner.Strategy

    public init(offsets: [Int: Int], arenaFloats: Int, naiveFloats: Int, lowerBoundFloats: Int,
                inPlace: [Int: Int] = [:], strategy: MemoryPlanner.Strategy = .largestFirst) {
        self.offsets = offsets; self.arenaFloats = arenaFloats; self.naiveFloats = naiveFloats
        self.lowerBoundFloats = lowerBoundFloats; self.inPlace = inPlace; self.strategy = strategy
    }
}

/// Places buffers with known lifetimes in one arena (see the file header).
public enum MemoryPlanner {
    /// Floats per alignment unit: 16 floats = 64 bytes.
    public static let alignmentFloats = 16

    /// An order in which blocks are placed; each block goes into the best-fitting gap.
    public enum Strategy: String, CaseIterable, Hashable, Sendable {
        /// Largest size first (ties: earlier first step, then id).
        case largestFirst = "largest-first"
        /// Blocks crossing the busiest step first, largest first within it.
        case busiestStepFirst = "busiest-step-first"
        /// Largest size times lifetime first.
        case largestAreaFirst = "largest-area-first"
        /// Earliest first step first, larger first on ties.
        case earliestFirst = "earliest-first"
    }

    /// Which legal in-place hints become merges.
    enum MergePolicy { case all, sameSize, none }

    /// Settings the caller chooses.
    public struct Options: Hashable, Sendable {
        /// Let requests share their `inPlaceOf` input's floats where legal; off, every request
        /// gets its own floats.
        public var inPlace: Bool
        /// Orders to try; the first smallest arena wins (all of them when empty).
        public var strategies: [Strategy]

        public init(inPlace: Bool = true, strategies: [Strategy] = Strategy.allCases) {
            self.inPlace = inPlace; self.strategies = strategies
        }
    }

    /// `n` floats rounded up to the alignment.
    public static func aligned(_ n: Int) -> Int { (n + alignmentFloats - 1) / alignmentFloats * alignmentFloats }

    /// Plans the arena. Requests must have unique ids, `size >= 0` and `first <= last`.
    public static func plan(_ requests: [BufferRequest], options: Options = Options()) -> MemoryPlan {
        checkRequests(requests)
        let naive = requests.reduce(0) { $0 + aligned($1.size) }
        let policies: [MergePolicy] = options.inPlace ? [.all, .sameSize, .none] : [.none]
        let lowerBound = peakLive(requests, inPlace: inPlacePairs(makeBlocks(requests, merging: policies[0]), requests))

        // Every merge policy with every strategy; the first smallest arena wins. A policy that
        // merges the same pairs as an earlier one is skipped. The lower bound assumes every
        // legal merge, so it bounds every candidate.
        let strategies = options.strategies.isEmpty ? Strategy.allCases : options.strategies
        var best: (blocks: [Block], strategy: Strategy, offsets: [Int], arena: Int)?
        var tried: [[Int: Int]] = []
        for policy in policies {
            let blocks = makeBlocks(requests, merging: policy)
            let pairs = inPlacePairs(blocks, requests)
            if tried.contains(pairs) { continue }
            tried.append(pairs)
            for strategy in strategies {
                let (offsets, arena) = place(blocks, requests, order: placementOrder(strategy, blocks, requests))
                if best == nil || arena < best!.arena { best = (blocks, strategy, offsets, arena) }
            }
        }
        guard let best else { fatalError("memory planner: no candidate plan") }

        var offsets: [Int: Int] = [:]
        for (b, block) in best.blocks.enumerated() {
            for m in block.members { offsets[requests[m].id] = best.offsets[b] }
        }
        let plan = MemoryPlan(offsets: offsets, arenaFloats: best.arena, naiveFloats: naive, lowerBoundFloats: lowerBound,
                              inPlace: inPlacePairs(best.blocks, requests), strategy: best.strategy)
        let problems = violations(plan, requests)
        guard problems.isEmpty else {
            fatalError("memory planner bug: \(problems.prefix(5).joined(separator: "; "))")
        }
        return plan
    }

    /// Checks the invariant: any two requests whose lifetimes overlap occupy disjoint floats
    /// (only a recorded, legal in-place pair may share, at one offset); all offsets aligned;
    /// everything inside `arenaFloats`. Returns the violations as text (empty when fine).
    public static func violations(_ plan: MemoryPlan, _ requests: [BufferRequest]) -> [String] {
        var problems: [String] = []
        var byId: [Int: BufferRequest] = [:]
        for r in requests {
            if byId[r.id] != nil { problems.append("request id \(r.id) is used twice") }
            byId[r.id] = r
        }
        if plan.arenaFloats % alignmentFloats != 0 {
            problems.append("arena of \(plan.arenaFloats) floats is not a multiple of \(alignmentFloats)")
        }
        for r in requests {
            guard let offset = plan.offsets[r.id] else { problems.append("buffer \(r.id) has no offset"); continue }
            if offset < 0 || offset % alignmentFloats != 0 {
                problems.append("buffer \(r.id) at offset \(offset) is not a non-negative multiple of \(alignmentFloats) floats")
            }
            if offset + aligned(r.size) > plan.arenaFloats {
                problems.append("buffer \(r.id) ends at float \(offset + aligned(r.size)), past the arena of \(plan.arenaFloats)")
            }
        }
        for user in plan.inPlace.keys.sorted() {
            let input = plan.inPlace[user]!
            guard let u = byId[user], let i = byId[input] else {
                problems.append("in-place pair \(user) <- \(input) names an unknown buffer"); continue
            }
            if !isLegalInPlace(user: u, input: i) {
                problems.append("""
                    in-place pair \(user) <- \(input) is illegal: input steps \(i.first)...\(i.last) size \(i.size), \
                    user steps \(u.first)...\(u.last) size \(u.size)
                    """)
            }
            if plan.offsets[user] != plan.offsets[input] {
                problems.append("in-place pair \(user) <- \(input) has offsets \(plan.offsets[user] ?? -1) and \(plan.offsets[input] ?? -1)")
            }
        }

        // Pairs alive together: sweep in order of first step.
        let placed = requests.filter { plan.offsets[$0.id] != nil && $0.size > 0 }
            .sorted { ($0.first, $0.id) < ($1.first, $1.id) }
        for (k, a) in placed.enumerated() {
            let aStart = plan.offsets[a.id]!, aEnd = aStart + aligned(a.size)
            for b in placed[(k + 1)...] {
                if b.first > a.last { break }
                let bStart = plan.offsets[b.id]!, bEnd = bStart + aligned(b.size)
                guard aStart < bEnd && bStart < aEnd else { continue }
                if plan.inPlace[b.id] == a.id || plan.inPlace[a.id] == b.id { continue }
                problems.append("""
                    buffers \(a.id) (steps \(a.first)...\(a.last), floats \(aStart)..<\(aEnd)) and \
                    \(b.id) (steps \(b.first)...\(b.last), floats \(bStart)..<\(bEnd)) are live together and overlap
                    """)
            }
        }
        return problems
    }

    // MARK: blocks

    /// Requests placed together at one offset: one request, or a chain of in-place merges.
    struct Block {
        /// Indices into the requests, input before user.
        var members: [Int]
        /// The largest aligned member size.
        var size: Int
        var first: Int
        var last: Int
        /// The id of the first member, for tie-breaking.
        var key: Int
    }

    static func checkRequests(_ requests: [BufferRequest]) {
        var seen = Set<Int>()
        for r in requests {
            precondition(seen.insert(r.id).inserted, "memory planner: request id \(r.id) is used twice")
            precondition(r.size >= 0, "memory planner: buffer \(r.id) has size \(r.size)")
            precondition(r.first <= r.last, "memory planner: buffer \(r.id) has steps \(r.first)...\(r.last)")
        }
    }

    static func isLegalInPlace(user: BufferRequest, input: BufferRequest) -> Bool {
        user.inPlaceOf == input.id && user.id != input.id && input.first < user.first
            && input.last == user.first && input.size >= user.size
    }

    /// Groups requests into blocks, merging the legal in-place pairs the policy allows; each
    /// input takes at most one in-place user (the earliest, then the lowest id). Members of a chain
    /// m0 <- m1 <- m2 are never live together except as direct pairs: m2 legal means
    /// m1.first < m2.first = m1.last, so m2 begins after m0.last = m1.first.
    static func makeBlocks(_ requests: [BufferRequest], merging policy: MergePolicy) -> [Block] {
        var index: [Int: Int] = [:]
        for (k, r) in requests.enumerated() { index[r.id] = k }
        var blockOf = Array(repeating: -1, count: requests.count)
        var hasUser = Array(repeating: false, count: requests.count)
        var blocks: [Block] = []
        // By first step, so an input's block exists before its user is looked at.
        let order = requests.indices.sorted { (requests[$0].first, requests[$0].id) < (requests[$1].first, requests[$1].id) }
        for k in order {
            let r = requests[k]
            var mergeInto: Int?
            if let id = r.inPlaceOf, let i = index[id], !hasUser[i], isLegalInPlace(user: r, input: requests[i]) {
                // The input is this user's under every policy, so the policies merge nested
                // sets of pairs and the lower bound with all of them bounds each.
                hasUser[i] = true
                let sameSize = aligned(r.size) == aligned(requests[i].size)
                if policy == .all || (policy == .sameSize && sameSize) { mergeInto = blockOf[i] }
            }
            if let b = mergeInto {
                blockOf[k] = b
                blocks[b].members.append(k)
                blocks[b].size = max(blocks[b].size, aligned(r.size))
                blocks[b].last = max(blocks[b].last, r.last)
            } else {
                blockOf[k] = blocks.count
                blocks.append(Block(members: [k], size: aligned(r.size), first: r.first, last: r.last, key: r.id))
            }
        }
        return blocks
    }

    /// The merges of `blocks`: user id -> input id.
    static func inPlacePairs(_ blocks: [Block], _ requests: [BufferRequest]) -> [Int: Int] {
        var pairs: [Int: Int] = [:]
        for block in blocks {
            for (input, user) in zip(block.members, block.members.dropFirst()) { pairs[requests[user].id] = requests[input].id }
        }
        return pairs
    }

    /// The peak over steps of the aligned floats live; an in-place pair counts once at the step
    /// its input ends and its user begins.
    static func peakLive(_ requests: [BufferRequest], inPlace: [Int: Int]) -> Int {
        var events: [(step: Int, delta: Int)] = []
        var sizeOf: [Int: Int] = [:]
        for r in requests {
            sizeOf[r.id] = aligned(r.size)
            events.append((r.first, aligned(r.size)))
            events.append((r.last + 1, -aligned(r.size)))
        }
        for r in requests {
            guard let input = inPlace[r.id] else { continue }
            let shared = min(sizeOf[r.id]!, sizeOf[input]!)
            events.append((r.first, -shared))
            events.append((r.first + 1, shared))
        }
        events.sort { ($0.step, $0.delta) < ($1.step, $1.delta) }
        var live = 0, peak = 0, k = 0
        while k < events.count {
            let step = events[k].step
            while k < events.count && events[k].step == step { live += events[k].delta; k += 1 }
            peak = max(peak, live)
        }
        return peak
    }

    // MARK: placement

    /// The block indices in the order a strategy places them.
    static func placementOrder(_ strategy: Strategy, _ blocks: [Block], _ requests: [BufferRequest]) -> [Int] {
        // Keys compared in order; every one ends with the block's smallest id, so it is total.
        let keys: [(Int, Int, Int, Int)]
        switch strategy {
        case .largestFirst:
            keys = blocks.map { (-$0.size, $0.first, $0.key, 0) }
        case .busiestStepFirst:
            let busiest = busiestStep(blocks, requests)
            keys = blocks.indices.map { (-busiest[$0], -blocks[$0].size, blocks[$0].first, blocks[$0].key) }
        case .largestAreaFirst:
            keys = blocks.map { block in
                let area = block.members.reduce(0) { $0 + aligned(requests[$1].size) * (requests[$1].last - requests[$1].first + 1) }
                return (-area, block.first, block.key, 0)
            }
        case .earliestFirst:
            keys = blocks.map { ($0.first, -$0.size, $0.key, 0) }
        }
        return blocks.indices.sorted { keys[$0] < keys[$1] }
    }

    /// For each block, the largest total of live floats at any step of its lifetime.
    static func busiestStep(_ blocks: [Block], _ requests: [BufferRequest]) -> [Int] {
        // Live floats per distinct step boundary (members counted separately: an estimate).
        var events: [(step: Int, delta: Int)] = []
        for r in requests {
            events.append((r.first, aligned(r.size)))
            events.append((r.last + 1, -aligned(r.size)))
        }
        events.sort { ($0.step, $0.delta) < ($1.step, $1.delta) }
        var steps: [Int] = [], live: [Int] = []
        var total = 0, k = 0
        while k < events.count {
            let step = events[k].step
            while k < events.count && events[k].step == step { total += events[k].delta; k += 1 }
            steps.append(step); live.append(total)
        }
        // The live total at step s is live[j] for the last boundary steps[j] <= s.
        return blocks.map { block in
            var j = firstIndex(steps, atLeast: block.first)
            if j == steps.count || steps[j] > block.first { j -= 1 }
            var peak = 0
            while j < steps.count && steps[j] <= block.last { peak = max(peak, live[j]); j += 1 }
            return peak
        }
    }

    /// The first index of sorted `a` whose element is >= x.
    static func firstIndex(_ a: [Int], atLeast x: Int) -> Int {
        var lo = 0, hi = a.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if a[mid] < x { lo = mid + 1 } else { hi = mid }
        }
        return lo
    }

    /// Places blocks in `order`, each at the best-fitting aligned offset; returns the offset of
    /// every block and the arena size. Placed blocks are found by lifetime, not by a scan of
    /// all of them: those living at most `shortLife` steps sit in buckets by first step (a
    /// block meets them only through the buckets from `first - shortLife` to its `last`), the
    /// few longer ones in one list. A chain of n layers places in O(n log n), not O(n^2).
    static func place(_ blocks: [Block], _ requests: [BufferRequest], order: [Int]) -> (offsets: [Int], arena: Int) {
        let size = requests.map { aligned($0.size) }
        var offsets = Array(repeating: -1, count: blocks.count)
        var arena = 0
        var forbidden: [(lo: Int, hi: Int)] = []
        let shortLife = 16
        // Buckets by distinct first step (steps may be negative or sparse).
        let firsts = Array(Set(blocks.map(\.first))).sorted()
        var shortByFirst: [[Int]] = Array(repeating: [], count: firsts.count)
        var long: [Int] = []
        var candidates: [Int] = []
        for b in order {
            let block = blocks[b]
            // Offsets o forbidden by a placed member n of block h live together with member m:
            // o in (offset(h) - size(m), offset(h) + size(n)), an open interval.
            forbidden.removeAll(keepingCapacity: true)
            if block.size > 0 {
                candidates.removeAll(keepingCapacity: true)
                candidates += long
                var j = firstIndex(firsts, atLeast: max(block.first, Int.min + shortLife) - shortLife)
                while j < firsts.count && firsts[j] <= block.last { candidates += shortByFirst[j]; j += 1 }
                for h in candidates {
                    let other = blocks[h]
                    guard other.size > 0 && other.first <= block.last && block.first <= other.last else { continue }
                    for m in block.members where size[m] > 0 {
                        for n in other.members where size[n] > 0 {
                            guard requests[m].first <= requests[n].last && requests[n].first <= requests[m].last else { continue }
                            forbidden.append((offsets[h] - size[m], offsets[h] + size[n]))
                        }
                    }
                }
            }
            forbidden.sort { $0 < $1 }
            // Free runs start where the forbidden intervals seen so far end; best fit is the
            // smallest slack to the next forbidden interval, the lowest offset on ties, and the
            // top (unbounded slack) only when nothing else fits.
            var cursor = 0
            var choice: (offset: Int, slack: Int)?
            for f in forbidden {
                if f.lo >= cursor, choice == nil || f.lo - cursor < choice!.slack {
                    choice = (cursor, f.lo - cursor)
                }
                cursor = max(cursor, f.hi)
            }
            let offset = choice?.offset ?? cursor
            offsets[b] = offset
            arena = max(arena, offset + block.size)
            if block.last - block.first <= shortLife {
                shortByFirst[firstIndex(firsts, atLeast: block.first)].append(b)
            } else {
                long.append(b)
            }
        }
        return (offsets, arena)
    }
}
