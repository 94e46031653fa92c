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
///         Merkle root of `(node payout address, cumulative amount)` leaves and, in the
///         same transaction, debits the publishers whose content was delivered: no root
///         is accepted unless the money behind it has arrived. Nodes (or anyone on their
///         behalf) claim against the latest root; a claim pays the leaf's cumulative
///         amount less what the account already claimed, always to the leaf's address.
/// @dev Leaves are OpenZeppelin StandardMerkleTree leaves of `(address, uint256)`:
///      `keccak256(bytes.concat(keccak256(abi.encode(account, cumulativeAmount))))`.
///      Storage is laid out for cheap claims: `totalFunded` and `totalClaimed` share a
///      slot with Pausable's `_paused` flag, so a claim touches three slots of this
///      contract (that one, the root and the account's claimed amount). Reentrancy is
///      guarded with transient storage (EIP-1153).
contract RewardDistributor is AccessControl, Pausable, ReentrancyGuardTransient {
    using SafeERC20 for IERC20;

    /// @notice Role allowed to post epoch roots.
    bytes32 public constant SETTLER_ROLE = keccak256("SETTLER_ROLE");
    /// @notice Role allowed to pause and unpause claims and posting.
    bytes32 public constant PAUSER_ROLE = keccak256("PAUSER_ROLE");

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

    /// @notice Cumulative amount already paid to each account.
    mapping(address account => uint256) public claimed;

    event RootPosted(uint64 indexed epoch, bytes32 root, uint256 total, uint256 totalFunded);
    event Claimed(address indexed account, uint256 amount, uint256 cumulativeAmount);

    error ZeroAddress();
    error TokenMismatch(address escrowToken, address token);
    error ZeroRoot();
    error EpochNotIncreasing(uint64 epoch, uint64 latest);
    error LengthMismatch(uint256 publishers, uint256 amounts);
    error TotalMismatch(uint256 total, uint256 sum);
    error Underfunded(uint256 required, uint256 balance);
    error InvalidProof();
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
    ///         than this contract has received.
    function postRoot(
        uint64 epoch_,
        bytes32 root,
        uint256 total,
        address[] calldata publishers,
        uint256[] calldata amounts
    ) external onlyRole(SETTLER_ROLE) whenNotPaused nonReentrant {
        if (root == bytes32(0)) revert ZeroRoot();
        uint64 latest = epoch;
        if (merkleRoot != bytes32(0) && epoch_ <= latest) revert EpochNotIncreasing(epoch_, latest);
        uint256 n = publishers.length;
        if (n != amounts.length) revert LengthMismatch(n, amounts.length);
        uint256 sum = 0;
        for (uint256 i = 0; i < n; ++i) {
            sum += amounts[i];
        }
        if (sum != total) revert TotalMismatch(total, sum);

        uint256 funded = uint256(totalFunded) + total;
        uint256 claimedSoFar = totalClaimed;
        totalFunded = SafeCast.toUint120(funded);
        merkleRoot = root;
        epoch = epoch_;

        if (n != 0) escrow.debitMany(publishers, amounts);
        // No root without funds: everything still claimable must be held here.
        uint256 required = funded - claimedSoFar;
        uint256 balance = token.balanceOf(address(this));
        if (balance < required) revert Underfunded(required, balance);

        emit RootPosted(epoch_, root, total, funded);
    }

    // ------------------------------------------------------------------ claims

    /// @notice Pays `account` its leaf's `cumulativeAmount` less what it already claimed.
    ///         Anyone may submit; the tokens always go to `account`.
    /// @return amount The amount paid.
    function claim(address account, uint256 cumulativeAmount, bytes32[] calldata proof)
        external
        whenNotPaused
        nonReentrant
        returns (uint256 amount)
    {
        amount = _claim(account, cumulativeAmount, proof);
    }

    /// @notice Several claims in one transaction; reverts if any one of them fails.
    /// @return total The sum paid.
    function claimMultiple(
        address[] calldata accounts,
        uint256[] calldata cumulativeAmounts,
        bytes32[][] calldata proofs
    ) external whenNotPaused nonReentrant returns (uint256 total) {
        uint256 n = accounts.length;
        if (n != cumulativeAmounts.length || n != proofs.length) revert LengthMismatch(n, cumulativeAmounts.length);
        for (uint256 i = 0; i < n; ++i) {
            total += _claim(accounts[i], cumulativeAmounts[i], proofs[i]);
        }
    }

    /// @notice What `claim(account, cumulativeAmount, proof)` would pay now (zero for a bad
    ///         proof or nothing left to claim).
    function claimable(address account, uint256 cumulativeAmount, bytes32[] calldata proof)
        external
        view
        returns (uint256)
    {
        if (!MerkleProof.verifyCalldata(proof, merkleRoot, _leaf(account, cumulativeAmount))) return 0;
        uint256 already = claimed[account];
        return cumulativeAmount > already ? cumulativeAmount - already : 0;
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

    function _claim(address account, uint256 cumulativeAmount, bytes32[] calldata proof)
        private
        returns (uint256 amount)
    {
        if (!MerkleProof.verifyCalldata(proof, merkleRoot, _leaf(account, cumulativeAmount))) {
            revert InvalidProof();
        }
        uint256 already = claimed[account];
        if (cumulativeAmount <= already) revert NothingToClaim(account, cumulativeAmount, already);
        unchecked {
            amount = cumulativeAmount - already;
        }
        // Never pay out more than was funded, even under a root whose leaves overspend.
        uint256 claimedAfter = uint256(totalClaimed) + amount;
        uint256 funded = totalFunded;
        if (claimedAfter > funded) revert ExceedsFunded(claimedAfter, funded);
        claimed[account] = cumulativeAmount;
        totalClaimed = uint120(claimedAfter); // <= totalFunded, a uint120
        emit Claimed(account, amount, cumulativeAmount);
        token.safeTransfer(account, amount);
    }

    /// @dev StandardMerkleTree leaf of `(address, uint256)`, hashed in scratch space.
    function _leaf(address account, uint256 cumulativeAmount) private pure returns (bytes32 leaf) {
        assembly ("memory-safe") {
            mstore(0x00, account)
            mstore(0x20, cumulativeAmount)
            mstore(0x00, keccak256(0x00, 0x40))
            leaf := keccak256(0x00, 0x20)
        }
    }
}
