// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/IERC20Permit.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";

/// @title PublisherEscrow
/// @notice Publishers deposit tokens here; delivery of their content is paid from their
///         balance. The RewardDistributor (DEBITER_ROLE) debits a publisher's balance to
///         fund an epoch's payouts. A publisher withdraws only after a notice period, so
///         delivery already made can still be settled: debits made during the notice
///         period reduce what the withdrawal pays.
/// @dev Balances are tracked per publisher; the escrow's token balance always equals
///      the sum of all publisher balances (plus anything sent to it directly).
contract PublisherEscrow is AccessControl, ReentrancyGuardTransient {
    using SafeERC20 for IERC20;

    /// @notice Role allowed to debit publisher balances (held by the RewardDistributor).
    bytes32 public constant DEBITER_ROLE = keccak256("DEBITER_ROLE");

    /// @notice Longest notice period the constructor accepts.
    uint64 public constant MAX_NOTICE_PERIOD = 365 days;

    struct Account {
        uint128 balance;
        uint128 pendingWithdrawal;
        uint64 unlockAt;
    }

    /// @notice The token publishers deposit.
    IERC20 public immutable token;
    /// @notice Seconds between `requestWithdrawal` and the earliest `withdraw`.
    uint64 public immutable noticePeriod;

    mapping(address publisher => Account) private _accounts;

    event Deposited(address indexed publisher, address indexed from, uint256 amount, uint256 balance);
    event WithdrawalRequested(address indexed publisher, uint256 amount, uint64 unlockAt);
    event WithdrawalCancelled(address indexed publisher);
    event Withdrawn(address indexed publisher, uint256 amount, uint256 balance);
    event Debited(address indexed publisher, address indexed debiter, uint256 amount, uint256 balance);

    error ZeroAddress();
    error ZeroAmount();
    error InvalidNoticePeriod(uint256 noticePeriod);
    error LengthMismatch(uint256 publishers, uint256 amounts);
    error InsufficientBalance(address publisher, uint256 balance, uint256 needed);
    error NoWithdrawalRequested(address publisher);
    error NoticePeriodNotOver(address publisher, uint64 unlockAt);
    error NothingToWithdraw(address publisher);

    /// @param admin Receives DEFAULT_ADMIN_ROLE (grants DEBITER_ROLE).
    /// @param token_ The token publishers deposit.
    /// @param noticePeriod_ Seconds a requested withdrawal waits (1 second to 365 days).
    constructor(address admin, IERC20 token_, uint64 noticePeriod_) {
        if (admin == address(0) || address(token_) == address(0)) revert ZeroAddress();
        if (noticePeriod_ == 0 || noticePeriod_ > MAX_NOTICE_PERIOD) revert InvalidNoticePeriod(noticePeriod_);
        token = token_;
        noticePeriod = noticePeriod_;
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
    }

    // ------------------------------------------------------------------ publishers

    /// @notice Deposits `amount` tokens (pulled from the caller) to the caller's balance.
    function deposit(uint256 amount) external nonReentrant {
        _deposit(msg.sender, amount);
    }

    /// @notice Deposits `amount` tokens (pulled from the caller) to `publisher`'s balance.
    function depositFor(address publisher, uint256 amount) external nonReentrant {
        if (publisher == address(0)) revert ZeroAddress();
        _deposit(publisher, amount);
    }

    /// @notice Deposits with an EIP-2612 permit instead of a prior `approve`.
    /// @dev A permit already used (for example front-run) is tolerated when the
    ///      allowance is in place anyway, as OpenZeppelin recommends.
    function depositWithPermit(uint256 amount, uint256 deadline, uint8 v, bytes32 r, bytes32 s)
        external
        nonReentrant
    {
        try IERC20Permit(address(token)).permit(msg.sender, address(this), amount, deadline, v, r, s) {} catch {}
        _deposit(msg.sender, amount);
    }

    /// @notice Asks to withdraw `amount`; `withdraw` pays it after the notice period.
    ///         A new request replaces the previous one and restarts the notice period.
    function requestWithdrawal(uint256 amount) external nonReentrant {
        if (amount == 0) revert ZeroAmount();
        Account storage account = _accounts[msg.sender];
        uint256 balance = account.balance;
        if (amount > balance) revert InsufficientBalance(msg.sender, balance, amount);
        uint64 unlockAt = uint64(block.timestamp) + noticePeriod;
        account.pendingWithdrawal = uint128(amount);
        account.unlockAt = unlockAt;
        emit WithdrawalRequested(msg.sender, amount, unlockAt);
    }

    /// @notice Cancels the caller's pending withdrawal request.
    function cancelWithdrawal() external nonReentrant {
        Account storage account = _accounts[msg.sender];
        if (account.pendingWithdrawal == 0) revert NoWithdrawalRequested(msg.sender);
        account.pendingWithdrawal = 0;
        account.unlockAt = 0;
        emit WithdrawalCancelled(msg.sender);
    }

    /// @notice Pays the caller's requested withdrawal once the notice period is over:
    ///         the requested amount, less whatever was debited meanwhile.
    function withdraw() external nonReentrant returns (uint256 amount) {
        Account storage account = _accounts[msg.sender];
        uint256 pending = account.pendingWithdrawal;
        if (pending == 0) revert NoWithdrawalRequested(msg.sender);
        uint64 unlockAt = account.unlockAt;
        if (block.timestamp < unlockAt) revert NoticePeriodNotOver(msg.sender, unlockAt);
        uint256 balance = account.balance;
        amount = pending < balance ? pending : balance;
        if (amount == 0) revert NothingToWithdraw(msg.sender);
        uint256 remaining = balance - amount;
        account.balance = uint128(remaining);
        account.pendingWithdrawal = 0;
        account.unlockAt = 0;
        emit Withdrawn(msg.sender, amount, remaining);
        token.safeTransfer(msg.sender, amount);
    }

    // ------------------------------------------------------------------ debiter

    /// @notice Debits `amount` from `publisher`'s balance and sends it to the caller.
    function debit(address publisher, uint256 amount) external onlyRole(DEBITER_ROLE) nonReentrant {
        _debit(publisher, amount);
        token.safeTransfer(msg.sender, amount);
    }

    /// @notice Debits each `publishers[i]` by `amounts[i]` and sends the sum to the caller
    ///         in one transfer.
    /// @return total The sum of `amounts`, sent to the caller.
    function debitMany(address[] calldata publishers, uint256[] calldata amounts)
        external
        onlyRole(DEBITER_ROLE)
        nonReentrant
        returns (uint256 total)
    {
        uint256 n = publishers.length;
        if (n != amounts.length) revert LengthMismatch(n, amounts.length);
        for (uint256 i = 0; i < n; ++i) {
            uint256 amount = amounts[i];
            _debit(publishers[i], amount);
            total += amount;
        }
        if (total != 0) token.safeTransfer(msg.sender, total);
    }

    // ------------------------------------------------------------------ views

    /// @notice `publisher`'s balance (debitable, and withdrawable after a request).
    function balanceOf(address publisher) external view returns (uint256) {
        return _accounts[publisher].balance;
    }

    /// @notice `publisher`'s pending withdrawal request: the amount asked for and when it
    ///         unlocks (both zero when there is none).
    function withdrawalOf(address publisher) external view returns (uint256 amount, uint64 unlockAt) {
        Account storage account = _accounts[publisher];
        return (account.pendingWithdrawal, account.unlockAt);
    }

    /// @notice What `withdraw` would pay `publisher` once unlocked: the pending request
    ///         capped by the balance left after debits.
    function withdrawable(address publisher) external view returns (uint256) {
        Account storage account = _accounts[publisher];
        uint256 pending = account.pendingWithdrawal;
        uint256 balance = account.balance;
        return pending < balance ? pending : balance;
    }

    // ------------------------------------------------------------------ internals

    function _deposit(address publisher, uint256 amount) private {
        if (amount == 0) revert ZeroAmount();
        token.safeTransferFrom(msg.sender, address(this), amount);
        Account storage account = _accounts[publisher];
        uint256 balance = uint256(account.balance) + amount;
        account.balance = SafeCast.toUint128(balance);
        emit Deposited(publisher, msg.sender, amount, balance);
    }

    function _debit(address publisher, uint256 amount) private {
        if (amount == 0) revert ZeroAmount();
        Account storage account = _accounts[publisher];
        uint256 balance = account.balance;
        if (amount > balance) revert InsufficientBalance(publisher, balance, amount);
        uint256 remaining = balance - amount;
        account.balance = uint128(remaining);
        emit Debited(publisher, msg.sender, amount, remaining);
    }
}
