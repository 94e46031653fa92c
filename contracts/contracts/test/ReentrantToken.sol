// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

/// @title ReentrantToken (test only)
/// @notice A malicious ERC-20: once armed, its next transfer calls `target` with `data`
///         before moving any balance, and records whether that reentrant call succeeded
///         and what it returned (or the revert data). The outer transfer then proceeds,
///         so a test can see the reentrant call refused while the outer call completes.
contract ReentrantToken is ERC20 {
    address public target;
    bytes public payload;
    bool public armed;

    bool public lastReentrySucceeded;
    bytes public lastReentryResult;
    uint256 public reentryAttempts;

    event ReentryAttempted(address indexed target, bool success, bytes result);

    constructor() ERC20("Reentrant", "REENT") {}

    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }

    /// @notice Arms a one-shot reentrant call into `target_` with `data`.
    function arm(address target_, bytes calldata data) external {
        target = target_;
        payload = data;
        armed = true;
    }

    /// @notice Makes this token contract call `target_` itself (so it can be a publisher).
    function execute(address target_, bytes calldata data) external returns (bytes memory) {
        (bool ok, bytes memory result) = target_.call(data);
        if (!ok) {
            assembly ("memory-safe") {
                revert(add(result, 0x20), mload(result))
            }
        }
        return result;
    }

    function _update(address from, address to, uint256 value) internal override {
        if (armed) {
            armed = false;
            reentryAttempts += 1;
            (bool ok, bytes memory result) = target.call(payload);
            lastReentrySucceeded = ok;
            lastReentryResult = result;
            emit ReentryAttempted(target, ok, result);
        }
        super._update(from, to, value);
    }
}
