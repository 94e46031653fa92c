// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {Pausable} from "@openzeppelin/contracts/utils/Pausable.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";

import {PublisherEscrow} from "./PublisherEscrow.sol";

/// @title RewardDistributor
/// @notice Pays node operators for measured delivery. Each epoch the settler posts the
///         Merkle root of `(index, node payout address, cumulative amount)` leaves and, in
///         the same transaction, debits the publishers whose content was delivered: no
///         root is accepted unless the money behind it has arrived. Nodes (or anyone on
///         their behalf) claim against the latest root; a claim pays the leaf's cumulative
///         amount less what its index already claimed, always to the leaf's address.
/// @dev Leaves are OpenZeppelin StandardMerkleTree leaves of `(uint256, address, uint256)`:
///      `keccak256(bytes.concat(keccak256(abi.encode(index, account, cumulativeAmount))))`.
///      An account keeps its index for ever (the settler appends new accounts), so what an
///      index has claimed is what its account has claimed.
///
///      Storage is laid out for cheap claims. What each index has claimed is kept in a
///      packed table, two indexes per word, each half holding `claimed + 1`: the settler
///      writes a new word as `1 | 1 << 128` when `postRoot` first covers its indexes, so no
///      claim ever writes a zero slot (20,000 gas) — a claim rewrites a non-zero word
///      (2,900). A half that is still zero is an index no root has covered. `totalFunded`
///      and `totalClaimed` share a slot with Pausable's `_paused` flag, so a claim touches
///      three slots of this contract (that one, the root and its claimed word).
///      Reentrancy is guarded with transient storage (EIP-1153).
contract RewardDistributor is AccessControl, Pausable, ReentrancyGuardTransient {
    using SafeERC20 for IERC20;

    /// @notice Role allowed to post epoch roots.
    bytes32 public constant SETTLER_ROLE = keccak256("SETTLER_ROLE");
    /// @notice Role allowed to pause and unpause claims and posting.
    bytes32 public constant PAUSER_ROLE = keccak256("PAUSER_ROLE");

    /// @dev A claimed word as the settler initialises it: both halves hold `0 + 1`.
    uint256 private constant FRESH_WORD = 1 | (1 << 128);
    uint256 private constant HALF_MASK = type(uint128).max;
    /// @notice The largest cumulative amount a leaf may carry (`claimed + 1` fits 128 bits).
    uint256 public constant MAX_CUMULATIVE = type(uint128).max - 1;

    /// @notice The token payouts are made in.
    IERC20 public immutable token;
    /// @notice The escrow epochs are funded from.
    PublisherEscrow public immutable escrow;

    // Packed with Pausable's `_paused` (declared first, so these share its slot).
    /// @notice Everything ever funded; the latest root's cumulative total.
    uint120 public totalFunded;
    /// @notice Everything ever claimed.
    uint120 public totalClaimed;

    /// @notice The latest epoch's Merkle root (zero before the first post).
    bytes32 public merkleRoot;
    /// @notice The latest epoch posted.
    uint64 public epoch;
    /// @notice How many indexes (accounts) the posted roots cover: `0 … accounts - 1`.
    uint64 public accounts;

    /// @dev Word `i` holds indexes `2i` (low half) and `2i + 1` (high half), each `claimed + 1`.
    mapping(uint256 word => uint256) private _claimedWords;

    event RootPosted(uint64 indexed epoch, bytes32 root, uint256 total, uint256 totalFunded, uint64 accounts);
    event AccountsCovered(uint64 accounts);
    event Claimed(address indexed account, uint256 amount, uint256 cumulativeAmount);

    error ZeroAddress();
    error TokenMismatch(address escrowToken, address token);
    error ZeroRoot();
    error EpochNotIncreasing(uint64 epoch, uint64 latest);
    error AccountsDecreasing(uint64 accounts, uint64 latest);
    error LengthMismatch(uint256 publishers, uint256 amounts);
    error TotalMismatch(uint256 total, uint256 sum);
    error Underfunded(uint256 required, uint256 balance);
    error InvalidProof();
    error UnknownIndex(uint256 index);
    error AmountTooLarge(uint256 cumulativeAmount);
    error NothingToClaim(address account, uint256 cumulativeAmount, uint256 claimed);
    error ExceedsFunded(uint256 totalClaimed, uint256 totalFunded);

    /// @param admin Receives DEFAULT_ADMIN_ROLE (grants SETTLER_ROLE and PAUSER_ROLE).
    /// @param token_ The payout token; must be the escrow's token.
    /// @param escrow_ The escrow to debit; grant this contract its DEBITER_ROLE.
    constructor(address admin, IERC20 token_, PublisherEscrow escrow_) {
        if (admin == address(0) || address(token_) == address(0) || address(escrow_) == address(0)) {
            revert ZeroAddress();
        }
        address escrowToken = address(escrow_.token());
        if (escrowToken != address(token_)) revert TokenMismatch(escrowToken, address(token_));
        token = token_;
        escrow = escrow_;
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
    }

    // ------------------------------------------------------------------ settler

    /// @notice Posts epoch `epoch_`'s root and funds it: debits `amounts[i]` from
    ///         `publishers[i]`'s escrow balance into this contract. `total` is the sum of
    ///         `amounts`, the new money this epoch adds; the root's leaves must sum to
    ///         `totalFunded` after the post (their cumulative amounts), which is never more
    ///         than this contract has received. `accounts_` is the number of leaves (indexes
    ///         `0 … accounts_ - 1`); it never decreases, and the claimed words of the new
    ///         indexes are initialised here, at the settler's expense (one word per two
    ///         new accounts), so that claims never write a zero slot.
    function postRoot(
        uint64 epoch_,
        bytes32 root,
        uint256 total,
        uint64 accounts_,
        address[] calldata publishers,
        uint256[] calldata amounts
    ) external onlyRole(SETTLER_ROLE) whenNotPaused nonReentrant {
        if (root == bytes32(0)) revert ZeroRoot();
        uint64 latest = epoch;
        if (merkleRoot != bytes32(0) && epoch_ <= latest) revert EpochNotIncreasing(epoch_, latest);
        merkleRoot = root;
        epoch = epoch_;
        _cover(accounts_);
        uint256 funded = _fund(total, publishers, amounts);
        emit RootPosted(epoch_, root, total, funded, accounts_);
    }

    /// @notice Covers indexes `0 … accounts_ - 1` ahead of a `postRoot`, writing their
    ///         claimed words (22,100 gas per word of two indexes): a root that adds more
    ///         accounts than one transaction can initialise is covered in several.
    function cover(uint64 accounts_) external onlyRole(SETTLER_ROLE) whenNotPaused {
        _cover(accounts_);
    }

    // ------------------------------------------------------------------ claims

    /// @notice Pays `account` its leaf's `cumulativeAmount` less what leaf `index` already
    ///         claimed. Anyone may submit; the tokens always go to `account`.
    /// @return amount The amount paid.
    function claim(uint256 index, address account, uint256 cumulativeAmount, bytes32[] calldata proof)
        external
        whenNotPaused
        nonReentrant
        returns (uint256 amount)
    {
        amount = _claim(index, account, cumulativeAmount, proof);
    }

    /// @notice Several claims in one transaction; reverts if any one of them fails.
    /// @return total The sum paid.
    function claimMultiple(
        uint256[] calldata indexes,
        address[] calldata accounts_,
        uint256[] calldata cumulativeAmounts,
        bytes32[][] calldata proofs
    ) external whenNotPaused nonReentrant returns (uint256 total) {
        uint256 n = indexes.length;
        if (n != accounts_.length || n != cumulativeAmounts.length || n != proofs.length) {
            revert LengthMismatch(n, accounts_.length);
        }
        for (uint256 i = 0; i < n; ++i) {
            total += _claim(indexes[i], accounts_[i], cumulativeAmounts[i], proofs[i]);
        }
    }

    /// @notice What `claim(index, account, cumulativeAmount, proof)` would pay now (zero for
    ///         a bad proof, an index no root covers or nothing left to claim).
    function claimable(uint256 index, address account, uint256 cumulativeAmount, bytes32[] calldata proof)
        external
        view
        returns (uint256)
    {
        if (!MerkleProof.verifyCalldata(proof, merkleRoot, _leaf(index, account, cumulativeAmount))) return 0;
        uint256 half = _half(index);
        if (half == 0) return 0;
        return cumulativeAmount > half - 1 ? cumulativeAmount - (half - 1) : 0;
    }

    /// @notice The cumulative amount leaf `index` has claimed (zero for an index no root covers).
    function claimedOf(uint256 index) external view returns (uint256) {
        uint256 half = _half(index);
        return half == 0 ? 0 : half - 1;
    }

    // ------------------------------------------------------------------ pauser

    /// @notice Stops claims and root posting.
    function pause() external onlyRole(PAUSER_ROLE) {
        _pause();
    }

    /// @notice Resumes claims and root posting.
    function unpause() external onlyRole(PAUSER_ROLE) {
        _unpause();
    }

    // ------------------------------------------------------------------ internals

    function _claim(uint256 index, address account, uint256 cumulativeAmount, bytes32[] calldata proof)
        private
        returns (uint256 amount)
    {
        if (!MerkleProof.verifyCalldata(proof, merkleRoot, _leaf(index, account, cumulativeAmount))) {
            revert InvalidProof();
        }
        if (cumulativeAmount > MAX_CUMULATIVE) revert AmountTooLarge(cumulativeAmount);
        uint256 wordIndex = index >> 1;
        uint256 shift = (index & 1) << 7;
        uint256 word = _claimedWords[wordIndex];
        uint256 half = (word >> shift) & HALF_MASK;
        if (half == 0) revert UnknownIndex(index);
        unchecked {
            uint256 already = half - 1;
            if (cumulativeAmount <= already) revert NothingToClaim(account, cumulativeAmount, already);
            amount = cumulativeAmount - already;
            // cumulativeAmount + 1 <= 2^128 - 1: the half is replaced, the other half kept.
            _claimedWords[wordIndex] = (word & ~(HALF_MASK << shift)) | ((cumulativeAmount + 1) << shift);
        }
        // Never pay out more than was funded, even under a root whose leaves overspend.
        uint256 claimedAfter = uint256(totalClaimed) + amount;
        uint256 funded = totalFunded;
        if (claimedAfter > funded) revert ExceedsFunded(claimedAfter, funded);
        totalClaimed = uint120(claimedAfter); // <= totalFunded, a uint120
        emit Claimed(account, amount, cumulativeAmount);
        token.safeTransfer(account, amount);
    }

    /// @dev Debits the publishers into this contract and adds `total` (their sum) to
    ///      `totalFunded`, which it returns; reverts unless every unclaimed token is held.
    function _fund(uint256 total, address[] calldata publishers, uint256[] calldata amounts)
        private
        returns (uint256 funded)
    {
        uint256 n = publishers.length;
        if (n != amounts.length) revert LengthMismatch(n, amounts.length);
        uint256 sum = 0;
        for (uint256 i = 0; i < n; ++i) {
            sum += amounts[i];
        }
        if (sum != total) revert TotalMismatch(total, sum);

        funded = uint256(totalFunded) + total;
        uint256 claimedSoFar = totalClaimed;
        totalFunded = SafeCast.toUint120(funded);

        if (n != 0) escrow.debitMany(publishers, amounts);
        // No root without funds: everything still claimable must be held here.
        uint256 required = funded - claimedSoFar;
        uint256 balance = token.balanceOf(address(this));
        if (balance < required) revert Underfunded(required, balance);
    }

    /// @dev Extends the covered indexes to `0 … accounts_ - 1`, writing the new claimed
    ///      words. Words already written hold claims and are left alone.
    function _cover(uint64 accounts_) private {
        uint64 covered = accounts;
        if (accounts_ < covered) revert AccountsDecreasing(accounts_, covered);
        if (accounts_ == covered) return;
        accounts = accounts_;
        emit AccountsCovered(accounts_);
        unchecked {
            uint256 end = (uint256(accounts_) + 1) >> 1;
            for (uint256 w = (uint256(covered) + 1) >> 1; w < end; ++w) {
                _claimedWords[w] = FRESH_WORD;
            }
        }
    }

    /// @dev `claimed + 1` of `index`, zero when no root covers it.
    function _half(uint256 index) private view returns (uint256) {
        return (_claimedWords[index >> 1] >> ((index & 1) << 7)) & HALF_MASK;
    }

    /// @dev StandardMerkleTree leaf of `(uint256, address, uint256)`, hashed in scratch
    ///      space and the free memory after it (not allocated: nothing else runs between).
    function _leaf(uint256 index, address account, uint256 cumulativeAmount) private pure returns (bytes32 leaf) {
        assembly ("memory-safe") {
            let ptr := mload(0x40)
            mstore(ptr, index)
            mstore(add(ptr, 0x20), account)
            mstore(add(ptr, 0x40), cumulativeAmount)
            mstore(0x00, keccak256(ptr, 0x60))
            leaf := keccak256(0x00, 0x20)
        }
    }
}
